"""The callback under tf.distribute: real worker processes on 127.0.0.1, one writer, no deadlock.

Each worker gets its own `directory` (as separate hosts would): the chief's must hold the one
set of artifacts, the other's must never appear.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training

_DATA = """
import numpy as np
rng = np.random.default_rng(0)
x = np.cumsum(rng.normal(0, 0.3, (320, 24, 3)), axis=1).astype("float32")
y = x[:, -4:, :1].mean(axis=1)
train, val = (x[:256], y[:256]), (x[256:], y[256:])
"""

# EarlyStopping with a min_delta no export can beat: every worker must stop after epoch 2.
_TF_KERAS_WORKER = (
    textwrap.dedent(
        """
    import json, os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    import tf_keras
    from keras_tflite import TFLiteExportCallback
    """
    )
    + _DATA
    + textwrap.dedent(
        """
    out, blocking = sys.argv[1], sys.argv[2] == "blocking"
    calibration = train[0]
    if sys.argv[2] == "bad_calibration":  # two features instead of three
        calibration = train[0][:, :, :2]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        tf_keras.utils.set_random_seed(0)
        model = tf_keras.Sequential(
            [
                tf_keras.Input((24, 3), name="series"),
                tf_keras.layers.LSTM(8),
                # Its moving statistics are sync-on-read: reading them is a collective.
                tf_keras.layers.BatchNormalization(),
                tf_keras.layers.Dense(1),
            ]
        )
        model.compile("adam", "mse", metrics=["mae"])
    directory = f"{out}/worker{index}"
    stop = tf_keras.callbacks.EarlyStopping("tflite_val_loss", min_delta=100.0, patience=0)
    callback = TFLiteExportCallback(directory, calibration, val, blocking=blocking, verbose=0)
    first = model.fit(*train, epochs=4, batch_size=32, callbacks=[callback, stop], verbose=0)
    # A second fit into the same directory resumes from the kept best, as on one machine.
    again = TFLiteExportCallback(directory, train[0], val, blocking=blocking, verbose=0)
    second = model.fit(*train, epochs=1, batch_size=32, callbacks=[again], verbose=0)
    print("RESULT " + json.dumps({"first": first.history, "second": second.history}))
    """
    )
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_cluster(script: str, *args: str, workers: int = 2) -> list[dict]:
    """Runs `script` on every worker; returns each one's RESULT line (all must succeed)."""
    results = []
    for code, output in _cluster_outcomes(script, *args, workers=workers):
        assert code == 0, output[-4000:]
        line = next(x for x in output.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line.removeprefix("RESULT ")))
    return results


def _cluster_outcomes(script: str, *args: str, workers: int = 2) -> list[tuple[int, str]]:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(workers)]}
    processes = []
    for index in range(workers):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", script, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    return [(p.returncode, output) for p, output in zip(processes, outputs)]


def test_bad_option_on_the_chief_stops_every_worker_with_an_error(tmp_path):
    (chief_code, chief), (other_code, other) = _cluster_outcomes(
        _TF_KERAS_WORKER, str(tmp_path), "bad_calibration"
    )
    # No worker is left waiting in a collective the chief never joins: all stop, before training.
    assert chief_code != 0 and "representative_data" in chief
    assert other_code != 0 and "could not prepare exports on the chief worker" in other
    assert "RESULT" not in chief + other


def _tflite(history: dict) -> dict:
    return {k: v for k, v in history.items() if k.startswith("tflite_")}


def _records(directory) -> list[dict]:
    return [json.loads(x) for x in (directory / "history.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["blocking", "background"])
def test_tf_keras_multi_worker_one_writer_same_logs_everywhere(tmp_path, mode):
    chief, other = _run_cluster(_TF_KERAS_WORKER, str(tmp_path), mode)

    assert not (tmp_path / "worker1").exists()  # the other worker wrote nothing
    manifest = read_manifest(tmp_path / "worker0" / "best")
    assert manifest is not None and manifest["metrics"]["tflite_arena_bytes"] > 0
    assert list((tmp_path / "worker0" / "logs").iterdir())  # TensorBoard events, chief only
    # Both workers saw the same tflite_ logs, so both stopped at the same epoch.
    for fit in ("first", "second"):
        assert len(chief[fit]["loss"]) == len(other[fit]["loss"])
        assert _tflite(chief[fit]) == _tflite(other[fit])
    records = _records(tmp_path / "worker0")
    if mode == "blocking":
        assert len(chief["first"]["loss"]) == 2  # EarlyStopping on tflite_val_loss, everywhere
        assert chief["first"]["tflite_val_loss"] == [r["value"] for r in records[:2]]
        assert [r["epoch"] for r in records] == [1, 2, 1]
        # The second fit resumed: its export had to beat the kept best to replace it.
        best = min(r["value"] for r in records)
        assert manifest["value"] == pytest.approx(best)
        assert records[2]["new_best"] == (records[2]["value"] == best)
    else:
        # Exports finish after these short epochs: every worker trains on, none waits.
        assert len(chief["first"]["loss"]) in (2, 4)
        assert records and all(r["exportable"] for r in records)


_KERAS_MIRRORED = (
    textwrap.dedent(
        """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_tflite import TFLiteExportCallback
    """
    )
    + _DATA
    + textwrap.dedent(
        """
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((24, 3), name="series"),
                keras.layers.LSTM(8),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    assert model.distribute_strategy.num_replicas_in_sync == 2
    stop = keras.callbacks.EarlyStopping("tflite_val_loss", min_delta=100.0, patience=0, mode="min")
    callback = TFLiteExportCallback(sys.argv[1], train[0], val, blocking=True, verbose=0)
    history = model.fit(*train, epochs=4, batch_size=32, callbacks=[callback, stop], verbose=0)
    print("RESULT " + json.dumps(history.history))
    """
    )
)


def test_keras3_mirrored_strategy_exports_once_and_logs_join_the_epoch(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", _KERAS_MIRRORED, str(tmp_path / "exports")],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    history = json.loads(next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert len(history["loss"]) == 2  # EarlyStopping on the int8 model's loss
    records = _records(tmp_path / "exports")
    assert [r["epoch"] for r in records] == [1, 2]
    assert history["tflite_val_loss"] == [r["value"] for r in records]
    manifest = read_manifest(tmp_path / "exports" / "best")
    assert manifest["metrics"]["tflite_arena_bytes"] > 0
    assert manifest["trained_on"] == "keras (tensorflow)"


_JAX_PROCESS = (
    textwrap.dedent(
        """
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    from keras_tflite import TFLiteExportCallback
    """
    )
    + _DATA
    + textwrap.dedent(
        """
    out, port, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    keras.distribution.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=index)
    # numpy input: each process feeds its own half of every global batch.
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((24, 3), name="series"), keras.layers.LSTM(8), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    stop = keras.callbacks.EarlyStopping("tflite_val_loss", min_delta=100.0, patience=0, mode="min")
    callback = TFLiteExportCallback(f"{out}/process{index}", train[0], val, blocking=True, verbose=0)
    x, y = train[0][index::2], train[1][index::2]
    history = model.fit(x, y, epochs=4, batch_size=16, callbacks=[callback, stop], verbose=0)
    print("RESULT " + json.dumps(history.history))
    """
    )
)


def test_jax_processes_one_writer_judged_on_jax_outputs(tmp_path):
    port = _free_ports(1)[0]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _JAX_PROCESS, str(tmp_path), str(port), str(index)],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    histories = []
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-4000:]
        histories.append(
            json.loads(next(x for x in output.splitlines() if x.startswith("RESULT "))[7:])
        )

    assert not (tmp_path / "process1").exists()
    assert len(histories[0]["loss"]) == len(histories[1]["loss"]) == 2
    assert _tflite(histories[0]) == _tflite(histories[1])
    manifest = read_manifest(tmp_path / "process0" / "best")
    assert manifest["trained_on"] == "keras (jax)"
    # Judged against the JAX model's own outputs, computed on the chief's private copy.
    assert manifest["metrics"]["tflite_rebuild_max_abs_diff"] < 1e-4
    assert manifest["metrics"]["tflite_arena_bytes"] > 0
