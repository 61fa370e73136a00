"""The verdict comes from TFLite Micro, an unfaithful int8 model is never the best, and the
person training hears what they need: skipped epochs, notes once, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tflite import TFLiteExportCallback
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TESTS = Path(__file__).resolve().parent


def _history(directory):
    return [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]


def test_tflite_micro_decides_where_litert_is_flat(tmp_path, capsys):
    """A barely trained Embedding+LSTM classifier: LiteRT's int8 output is a constant, TFLite
    Micro's is float's within a fraction of an output step. The device runs TFLite Micro."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, (600, 20)).astype(np.int32)
    labels = ((tokens == 7).sum(1) > (tokens == 3).sum(1)).astype(np.int32)
    inputs = keras.Input((20,), dtype="int32", name="tokens")
    hidden = keras.layers.LSTM(16)(keras.layers.Embedding(50, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = TFLiteExportCallback(tmp_path, tokens, (tokens, labels), blocking=True)
    history = model.fit(tokens, labels, epochs=1, callbacks=[callback], verbose=0)
    (record,) = _history(tmp_path)
    metrics = record["metrics"]
    assert metrics["tflite_litert_variance_ratio_vs_float"] < 0.1  # LiteRT: a flat line
    assert metrics["tflite_variance_ratio_vs_float"] > 0.5  # TFLite Micro: follows float
    assert record["exportable"] and record["new_best"], record["reason"]
    assert read_manifest(tmp_path / "best") is not None
    assert history.history["tflite_val_loss"][0] == pytest.approx(record["value"])
    assert any("LiteRT's int8 output is flat" in w for w in record["warnings"])
    assert "note: LiteRT's int8 output is flat" in capsys.readouterr().out


@pytest.fixture(scope="module")
def forecaster():
    """The quick start's LSTM on 2-day windows, trained on the whole training year."""
    sys.path.insert(0, str(EXAMPLES))
    import seattle

    train, val, _ = seattle.windows(48)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 3), name="series")
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.LSTM(16)(inputs)))
    model.compile(optimizer="adam", loss="mse")
    model.fit(*train, epochs=3, batch_size=64, verbose=0)
    return model, train, (val[0][:500], val[1][:500])


def _export_once(forecaster, directory, representative):
    """One export of the trained forecaster, unchanged by the epoch it rides on (rate 0)."""
    trained, train, val = forecaster
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"])
    callback = TFLiteExportCallback(directory, representative, val, blocking=True, verbose=0)
    model.fit(train[0][:64], train[1][:64], epochs=1, callbacks=[callback], verbose=0)
    (record,) = _history(directory)
    return record


def test_an_int8_model_calibrated_on_five_samples_is_never_the_best(tmp_path, forecaster):
    first_five = forecaster[1][0][:5]  # what `x[:5]` gives: five windows of January 1st
    with pytest.warns(UserWarning, match="holds only 5 samples"):
        record = _export_once(forecaster, tmp_path, first_five)
    assert not record["exportable"]
    assert record["metrics"]["tflite_normalized_rmse_vs_float"] > 0.15
    assert re.match(
        r"not a faithful copy in TFLite Micro: normalized RMSE vs float [\d.]+ > "
        r"max_normalized_rmse 0.15 .* \(calibrated on only 5 samples: pass more representative "
        r"samples, or num_calibration_samples='auto'\)",
        record["reason"],
    ), record["reason"]
    assert not (tmp_path / "best").exists()


def test_the_same_model_calibrated_as_the_default_is_kept(tmp_path, forecaster):
    record = _export_once(forecaster, tmp_path, forecaster[1])
    assert record["exportable"] and record["new_best"], record["reason"]
    assert record["metrics"]["tflite_normalized_rmse_vs_float"] < 0.05
    best = (tmp_path / "best").resolve()
    assert best.parent == tmp_path.resolve()  # exports sit in the directory given
    # The kept set is readable by others, as any file the user writes (umask), not private.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(best.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((best / "model.tflite").stat().st_mode) == 0o666 & ~umask


def test_epochs_skipped_while_an_export_ran_are_said(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    y = x[:, :1] * 2
    # An export takes seconds (a worker starts TensorFlow); these epochs take milliseconds.
    callback = TFLiteExportCallback(tmp_path, x, (x, y))
    model.fit(x, y, epochs=6, batch_size=200, callbacks=[callback], verbose=0)
    printed = capsys.readouterr().out
    records = _history(tmp_path)
    assert records[0]["epoch"] == 1 and records[-1]["epoch"] == 6
    skipped = sorted(e for r in records for e in r["skipped_epochs"])
    assert skipped and set(skipped) | {r["epoch"] for r in records} == set(range(1, 7))
    assert re.search(r"Epoch 6: \(epochs? [\d, -]+ not exported\)", printed), printed
    assert printed.count("every_n_epochs=N spaces exports out, blocking=True exports") == 1


SCALE = 0.5


def _squash(t):
    return keras.ops.tanh(t) * SCALE


def test_lambda_layers_that_call_keras_ops_export(tmp_path):
    """The worker rebuilds the model from its file; the Lambda's globals travel with it."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="features")
    h = keras.layers.Lambda(lambda t: _squash(t) + keras.ops.sin(t) * SCALE)(inputs)
    h = keras.layers.Lambda(_squash)(keras.layers.Dense(8)(h))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    y = np.sin(x[:, :1])
    callback = TFLiteExportCallback(tmp_path, x, (x, y), blocking=True, verbose=0)
    model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
    (record,) = _history(tmp_path)
    assert record["exportable"], record["reason"]
    assert record["metrics"]["tflite_normalized_rmse_vs_float"] < 0.05


def test_tf_keras_lambda_layers_that_call_tensorflow_export():
    import tf_keras

    import keras_tflite

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((6,), name="features")
    h = tf_keras.layers.Lambda(lambda t: tf.nn.relu(t) * SCALE)(tf_keras.layers.Dense(8)(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(h))
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    result = keras_tflite.convert(model, x)
    micro = keras_tflite.MicroModel(result.tflite).predict(x[:100])
    expected = model.predict(x[:100], verbose=0)
    assert np.sqrt(np.mean((micro - expected) ** 2)) < 0.05 * np.std(expected)


def test_a_lambda_the_worker_cannot_rebuild_is_refused_before_training(tmp_path):
    class Scaler:
        factor = 2.0

    scaler = Scaler()
    inputs = keras.Input((6,), name="features")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * scaler.factor)(inputs))
    model.compile(optimizer="adam", loss="mse")
    x = np.zeros((50, 6), np.float32)
    callback = TFLiteExportCallback(tmp_path, x, (x, x), verbose=0)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(
        ValueError,
        match=r"Lambda layer 'lambda.*' to read only modules, numbers, strings and functions.*"
        r"Received: 'scaler', a .*Scaler captured from the enclosing function.*"
        r"register_keras_serializable",
    ):
        model.fit(x, x, epochs=1, callbacks=[callback], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


_INTERRUPTED = """
import os, signal, sys, threading, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, {tests!r})
import keras, numpy as np
from conftest import build, sample_inputs
from keras_tflite import TFLiteExportCallback

model = build("lstm")
model.compile(optimizer="adam", loss="mse")
x = sample_inputs(model, 200)["series"]
y = x[:, -1, :1]
epochs = 2 if {press!r} == "train_end" else 5


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)  # the person training presses Ctrl-C


class CtrlC(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch + 1, "done", flush=True)
        if {press!r} == "epoch":
            ctrl_c()
        elif epoch + 1 == epochs:  # while the callback waits for the last export
            threading.Timer(1.0, ctrl_c).start()


if {own_handler}:  # a script's own clean stop: finish the epoch, then end training
    def stop_cleanly(signum, frame):
        print("stopping cleanly", flush=True)
        model.stop_training = True

    signal.signal(signal.SIGINT, stop_cleanly)

try:
    model.fit(x, y, epochs=epochs, verbose=0,
              callbacks=[TFLiteExportCallback({out!r}, x, (x, y)), CtrlC()])
    print("fit returned", flush=True)
except KeyboardInterrupt:
    if not {caught}:
        raise
    print("caught by the script", flush=True)  # as notebooks and scripts do; the program goes on
    if {twice}:
        try:
            ctrl_c()  # Ctrl-C again, while the export runs
            time.sleep(60)
        except KeyboardInterrupt:
            print("caught again", flush=True)
    time.sleep(120)
"""


def _start(tmp_path, caught=False, twice=False, press="epoch", own_handler=False):
    script = _INTERRUPTED.format(
        tests=str(TESTS), out=str(tmp_path / "out"), caught=caught, twice=twice, press=press,
        own_handler=own_handler,
    )  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def _workers(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and b"keras_tflite.worker.main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _read_until(process, needle: str, seen: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"never printed {needle!r}: {''.join(seen)[-2000:]}")


def test_ctrl_c_finishes_the_running_export_says_so_and_announces_it(tmp_path):
    process = _start(tmp_path)
    seen: list[str] = []
    _read_until(process, "finishing the export of epoch 1", seen)
    rest, _ = process.communicate(timeout=300)
    printed = "".join(seen) + rest
    assert process.returncode != 0  # the KeyboardInterrupt still ends the program
    assert "Ctrl-C again to abandon it" in printed
    assert re.search(r"Epoch 1: .* new best, saved to .*best", printed), printed
    assert read_manifest(tmp_path / "out" / "best") is not None


def _printed_until(process, needle: str) -> str:
    """What a script that goes on after its caught Ctrl-C printed until `needle`; it is then
    stopped."""
    seen: list[str] = []
    try:
        _read_until(process, needle, seen)
    finally:
        process.kill()
    return "".join(seen)


def test_a_caught_ctrl_c_says_what_it_does_and_reports_the_finished_export(tmp_path):
    process = _start(tmp_path, caught=True)
    printed = _printed_until(process, "exports finished")
    finishing = printed.index("finishing the export of epoch 1 in the background")
    assert finishing < printed.index("caught by the script")  # said before the script goes on
    result = re.search(r"Epoch 1: .* new best, saved to .*best", printed)
    assert result and result.start() > printed.index("caught by the script"), printed
    assert f"the best model so far (epoch 1) is in {tmp_path / 'out' / 'best'}" in printed
    assert read_manifest(tmp_path / "out" / "best") is not None


def test_a_second_caught_ctrl_c_records_the_export_as_abandoned_not_crashed(tmp_path):
    process = _start(tmp_path, caught=True, twice=True)
    seen: list[str] = []
    try:
        _read_until(process, "abandoned;", seen)
        workers = _workers(process.pid)  # the abandoned export started no other
    finally:
        process.kill()
    printed = "".join(seen)
    assert "export of epoch 1 abandoned; no deployable model has been kept." in printed, printed
    assert "best model so far" not in printed
    assert workers == [], printed
    (entry,) = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").open()]
    assert entry["abandoned"] is True and entry["reason"].startswith("abandoned")
    assert "SIGKILL" not in json.dumps(entry)
    assert not (tmp_path / "out" / "best").exists()


def test_a_ctrl_c_while_the_fit_waits_for_its_last_export_is_taken_the_same_way(tmp_path):
    process = _start(tmp_path, caught=True, press="train_end")
    printed = _printed_until(process, "exports finished")
    assert "finishing the export of epoch 2 in the background" in printed, printed
    assert "caught by the script" in printed and "fit returned" not in printed
    assert re.search(r"Epoch 2: .* saved to .*best", printed), printed


def test_a_scripts_own_clean_stop_on_ctrl_c_is_left_to_it(tmp_path):
    process = _start(tmp_path, press="epoch", own_handler=True)
    printed, _ = process.communicate(timeout=300)
    assert process.returncode == 0, printed
    assert "stopping cleanly" in printed and "fit returned" in printed
    assert "interrupted" not in printed and "abandon" not in printed
    records = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").open()]
    assert [r["epoch"] for r in records] == [1] and records[0]["exportable"], records


def _running_worker(tmp_path, after: str):
    """The interrupted script, once it printed `after` and its export's worker runs."""
    process = _start(tmp_path)
    seen: list[str] = []
    _read_until(process, after, seen)
    deadline = time.monotonic() + 60
    while not (workers := _workers(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers, "the export's worker never started"
    return process, seen, workers


def test_a_second_ctrl_c_abandons_the_export_and_no_worker_outlives_the_process(tmp_path):
    process, seen, workers = _running_worker(tmp_path, "finishing the export of epoch 1")
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert "export abandoned" in rest, "".join(seen) + rest
    time.sleep(1.0)
    assert not any(_alive(pid) for pid in workers)
    assert not (tmp_path / "out" / "best").exists()  # nothing half-written was kept


def test_a_worker_dies_with_a_killed_parent(tmp_path):
    process, _, workers = _running_worker(tmp_path, "epoch 1 done")
    process.kill()  # SIGKILL: no Python code runs in the parent
    process.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
