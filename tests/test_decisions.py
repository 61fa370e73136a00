"""The decisions, without a conversion: gates, monitor direction, schedule, store, records, the
worker protocol. Real values in real dataclasses and files; seconds, not minutes."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from keras_tflite.callbacks import gates
from keras_tflite.callbacks.background import LatestWins
from keras_tflite.callbacks.monitor import Monitor, direction
from keras_tflite.callbacks.pipeline import Snapshot
from keras_tflite.callbacks.record import ExportRecord, line
from keras_tflite.callbacks.schedule import Schedule
from keras_tflite.callbacks.store import Store
from keras_tflite.callbacks.tensorboard import ExportSummaries
from keras_tflite.conversion import ConversionResult
from keras_tflite.deploy.artifacts import read_manifest
from keras_tflite.exporter import Judged
from keras_tflite.runtime.fidelity import fidelity
from keras_tflite.runtime.inspect import QuantizedTensor
from keras_tflite.worker import protocol

STEP = 0.01  # the int8 output scale of these judged exports


def _judged(micro, litert=None, expected=None, *, samples=500, learned=False, scale=STEP):
    rng = np.random.default_rng(0)
    expected = expected if expected is not None else rng.normal(0, 1, (200, 1)).astype(np.float32)
    litert = expected if litert is None else litert
    output = QuantizedTensor("out", (1, 1), "int8", scale, 0)
    result = ConversionResult(
        b"", "keras_frozen", ["FULLY_CONNECTED"], [], [output], [], "int8", samples, 0, 1, learned
    )
    metrics = {f"litert_{k}_vs_float": v for k, v in fidelity([expected], [litert]).items()}
    metrics |= {f"{k}_vs_float": v for k, v in fidelity([expected], [micro]).items()}
    metrics["arena_bytes"], metrics["model_bytes"] = 4000.0, 6000.0
    metrics["litert_max_lsb_vs_micro"] = float(np.max(np.abs(litert - micro)) / scale)
    judged = Judged(result, metrics, [litert], [expected], None, None, 1.0, [micro])
    return judged, {f"tflite_{k}": v for k, v in metrics.items()}


def _float():
    return np.random.default_rng(0).normal(0, 1, (200, 1)).astype(np.float32)


def test_a_faithful_export_passes_every_gate():
    expected = _float()
    judged, logs = _judged(expected + 0.004, expected=expected)
    assert gates.refusal(judged, logs, gates.Gates(), None) is None


def test_a_flat_line_on_tflite_micro_is_refused_naming_the_runtime_and_the_evidence():
    expected = _float()
    judged, logs = _judged(np.full_like(expected, 0.1), expected=expected)
    reason = gates.refusal(judged, logs, gates.Gates(), "calibrated on only 5 samples")
    assert reason.startswith("flat-line output in TFLite Micro: int8 variance is 0.000")
    assert "(calibrated on only 5 samples: pass more representative samples" in reason


def test_calibration_is_blamed_only_on_evidence():
    expected = _float()
    judged, logs = _judged(np.full_like(expected, 0.1), expected=expected, samples=500)
    reason = gates.refusal(judged, logs, gates.Gates(), None)
    assert "although calibration saw 500 samples; layer_errors=True" in reason
    judged, logs = _judged(np.full_like(expected, 0.1), expected=expected, learned=True)
    assert "learned in quantization-aware training" in gates.refusal(
        judged, logs, gates.Gates(), None
    )


def test_litert_never_vetoes_and_is_noted():
    expected = _float()
    judged, logs = _judged(expected, litert=np.full_like(expected, 0.1), expected=expected)
    assert gates.refusal(judged, logs, gates.Gates(), None) is None
    notes = gates.notes(judged, logs)
    assert "LiteRT's int8 output is flat" in notes["litert_flat"]
    assert "judged on TFLite Micro" in notes["runtime_gap"]
    assert "TFLite Micro is closer to float" in notes["runtime_gap"]


def test_an_unfaithful_copy_is_refused_unless_within_one_output_step():
    expected = _float()
    drift = expected + np.random.default_rng(1).normal(0, 0.3, expected.shape).astype(np.float32)
    judged, logs = _judged(drift, expected=expected)
    reason = gates.refusal(judged, logs, gates.Gates(), None)
    assert reason.startswith("not a faithful copy in TFLite Micro: normalized RMSE vs float 0.2")
    assert "> max_normalized_rmse 0.15" in reason and "int8 output steps" in reason
    # Float outputs that barely vary: the same relative error is within int8's resolution.
    tiny = expected * 0.002
    judged, logs = _judged(tiny + STEP * 0.3, expected=tiny)
    assert logs["tflite_normalized_rmse_vs_float"] > 0.15
    assert gates.refusal(judged, logs, gates.Gates(), None) is None


@pytest.mark.parametrize(
    "limits, reason",
    [
        (gates.Gates(max_error=0.001), r"TFLite Micro MAE vs float 0.004 > max_error 0.001"),
        (gates.Gates(max_model_bytes=5000), r"model_bytes 6000 > max_model_bytes 5000"),
        (gates.Gates(max_arena_bytes=3000), r"arena_bytes 4000 > max_arena_bytes 3000"),
    ],
)
def test_limits_and_budgets(limits, reason):
    expected = _float()
    judged, logs = _judged(expected + 0.004, expected=expected)
    assert gates.refusal(judged, logs, limits, None).startswith(reason.replace("\\", ""))


def test_tflite_micro_that_cannot_run_the_model_is_refused():
    judged, logs = _judged(_float())
    judged.micro_error = "Didn't find op for builtin opcode 'RELU_N1_TO_1'"
    assert gates.refusal(judged, logs, gates.Gates(), None).startswith(
        "TFLite Micro cannot run it: Didn't find op"
    )


@pytest.mark.parametrize(
    "key, metrics, expected",
    [
        ("tflite_val_loss", None, "min"),
        ("val_loss", None, "min"),
        ("tflite_val_accuracy", ["accuracy"], "max"),
        ("tflite_litert_val_precision", ["precision"], "max"),
        ("val_recall", ["recall"], "max"),
        ("tflite_val_auc", ["auc"], "max"),
        ("tflite_val_r2_score", ["r2_score"], "max"),
        ("tflite_val_f1_score", ["f1_score"], "max"),
        ("tflite_val_mae", ["mae"], "min"),
        ("tflite_mae_vs_float", None, "min"),
        ("tflite_normalized_rmse_vs_float", None, "min"),
        ("tflite_litert_snr_db_vs_float", None, "max"),
        ("tflite_top1_agreement_vs_float", None, "max"),
        ("tflite_arena_bytes", None, "min"),
        ("tflite_latency_ms", None, "min"),
        ("tflite_stream_instructions", None, "min"),
    ],
)
def test_the_direction_comes_from_the_metric(key, metrics, expected):
    config = {"loss": "mse", "metrics": metrics} if metrics else {"loss": "mse"}
    assert direction(key, config) == expected


def test_a_direction_that_cannot_be_told_raises_like_keras():
    with pytest.raises(ValueError, match=r"Received: 'tflite_val_f1'.*Pass mode='max'"):
        direction("tflite_val_f1", {"loss": "mse", "metrics": ["mae"]})
    monitor = Monitor("tflite_val_f1", mode="max")
    monitor.resolve({"loss": "mse"})  # an explicit mode needs nothing
    assert monitor.update(0.5) and monitor.update(0.6) and not monitor.update(0.55)


def test_min_delta_and_a_threshold_to_beat():
    monitor = Monitor("tflite_val_loss", min_delta=0.1, best=1.0)
    monitor.resolve(None)
    assert not monitor.update(0.95)
    assert monitor.update(0.85) and monitor.best == 0.85


def test_epoch_schedule_every_n_and_the_last():
    schedule = Schedule("epoch", 2, Monitor("val_loss"))
    due = [schedule.epoch_end(e, {}, 5, 10) for e in range(5)]
    assert due == [False, True, False, True, True]
    assert schedule.step == 50  # no batch hooks (tf_keras): the epoch's steps are counted


def test_batch_schedule_counts_batches_keras_skips_under_steps_per_execution():
    schedule = Schedule(4, 1, Monitor("val_loss"))
    schedule.epoch_begin()
    due = [schedule.batch_end(b) for b in (1, 3, 5, 7, 9)]  # reported every 2nd batch
    assert due == [False, True, False, True, False] and schedule.step == 10
    schedule.epoch_begin()
    assert schedule.batch_end(1) and schedule.step == 12  # the count runs across epochs


def test_improvement_schedule_follows_the_float_metrics_direction():
    monitor = Monitor("val_accuracy")
    monitor.resolve({"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]})
    schedule = Schedule("improvement", 1, monitor)
    accuracies = [0.5, 0.7, 0.6, 0.8, 0.8]
    due = [schedule.epoch_end(e, {"val_accuracy": a}, 5, 1) for e, a in enumerate(accuracies)]
    assert due == [True, True, False, True, False]
    assert not schedule.epoch_end(5, {"loss": 1.0}, 9, 1) and schedule.missing_key == "val_accuracy"


def _keep(store: Store, epoch: int, best: bool) -> ExportRecord:
    entry = ExportRecord(epoch, epoch * 10, True, None, "tflite_val_loss", 1.0 / epoch, best)
    entry.path = str(store.keep(entry, b"TFL3" + bytes(epoch), {"epoch": epoch}, {}, "g_model"))
    store.append(entry)
    return entry


def _history(store: Store) -> list[dict]:
    return [json.loads(x) for x in store.history.read_text().splitlines()]


def test_keep_last_keeps_that_many_besides_the_best_even_when_the_newest_is_best(tmp_path):
    store = Store(tmp_path, save_best_only=False, keep_last=2)
    for epoch in range(1, 6):
        _keep(store, epoch, best=epoch in (1, 5))
    folders = sorted(p.name for p in tmp_path.glob("epoch*"))
    best = (tmp_path / "best").resolve().name
    assert best.startswith("epoch0005") and len(folders) == 3  # the best + 2 others
    assert [f[:9] for f in folders] == ["epoch0003", "epoch0004", "epoch0005"]
    records = _history(store)
    assert [r["path"] is None for r in records] == [True, True, False, False, False]
    assert records[0]["removed"] == "keep_last=2"
    assert read_manifest(tmp_path / "best")["epoch"] == 5


def test_save_best_only_forgets_the_replaced_best(tmp_path):
    store = Store(tmp_path, save_best_only=True, keep_last=None)
    _keep(store, 1, best=True)
    _keep(store, 2, best=True)
    assert len(list(tmp_path.glob("epoch*"))) == 1
    first, second = _history(store)
    assert first["path"] is None and "replaced by a better best" in first["removed"]
    assert second["path"] is not None


def test_record_line_and_json():
    entry = ExportRecord(
        6, 60, True, None, "tflite_val_loss", 0.5, True,
        metrics={"tflite_model_bytes": 5120.0, "tflite_mae_vs_float": 0.01},
        float_value=0.4, skipped_epochs=[2, 3, 4, 5], notes={"x": "y"},
        validation={"samples": 1024, "available": 1728},
    )  # fmt: skip
    text = line(entry, "exports/best")
    assert text.startswith("Epoch 6: (epochs 2-5 not exported) int8 5.0 KB,")
    assert (
        "tflite_val_loss 0.5 (float 0.4), MAE vs float 0.01 in TFLite Micro, on 1,024 of 1,728 samples"
        in text
    )
    assert text.endswith("saved to exports/best")
    entry.validation = {"samples": 80, "available": 80}
    assert "on 80 samples - new best" in line(entry, "exports/best")
    assert "notes" not in entry.to_json() and entry.to_json()["skipped_epochs"] == [2, 3, 4, 5]


def test_latest_wins_drops_waiting_snapshots_and_says_which():
    def Snap(epoch):  # noqa: N802 - reads like the class it stands for
        return Snapshot(epoch, 0, {}, [], None)

    gate = threading.Event()

    def process(snapshot):
        gate.wait(5)
        return (snapshot.epoch, snapshot.skipped_epochs)

    queue = LatestWins(process, patience=5)
    for epoch in range(4):  # the first runs; 1 and 2 wait and are replaced
        queue.submit(Snap(epoch))
        time.sleep(0.05)
    gate.set()
    assert queue.wait()
    assert queue.take_finished() == [(0, []), (3, [2, 3])]


def test_summaries_keep_a_urls_double_slash():
    assert ExportSummaries("gs://bucket/logs").run_dir("tflite") == "gs://bucket/logs/tflite"


def test_protocol_round_trips(tmp_path):
    job = protocol.Job(framework="keras", inputs=[{"name": "x", "shape": [3], "dtype": "float32"}],
                       quantization="int8", model_file="model.keras", niceness=10)  # fmt: skip
    job.write(tmp_path)
    assert protocol.Job.read(tmp_path) == job
    protocol.emit(tmp_path, protocol.Event.START, "keras_frozen")
    protocol.emit(
        tmp_path, protocol.Event.ATTEMPT, protocol.Attempt("keras_frozen", "converted").to_json()
    )
    with open(tmp_path / protocol.EVENTS_FILE, "a") as f:
        f.write('{"attempt": {"strat')  # a worker killed mid-line
    events = protocol.read_events(tmp_path)
    assert protocol.first(events, protocol.Event.START) == "keras_frozen"
    assert protocol.every(events, protocol.Event.ATTEMPT)[0]["status"] == "converted"
    arrays = [np.arange(3.0)], [np.ones(3)], None
    protocol.write_judged(tmp_path, *arrays)
    judged = protocol.read_judged(tmp_path)
    assert np.array_equal(judged.expected[0], arrays[0][0]) and judged.micro is None
    assert int(protocol.Exit.NOTHING_CONVERTED) == 2


def test_waiting_for_an_export_is_bounded():
    release = threading.Event()

    def Snap():  # noqa: N802
        return Snapshot(0, 0, {}, [], None)

    queue = LatestWins(lambda snapshot: release.wait(10), patience=0.2)
    queue.submit(Snap())
    began = time.monotonic()
    assert queue.wait() is False and time.monotonic() - began < 2
    release.set()
    assert queue.wait(5) is True


def test_warnings_point_at_the_users_line_even_from_an_export_thread():
    import sys
    import warnings

    from keras_tflite import caller

    def fit():  # stands for the user's `model.fit(...)` line
        caller.remember()

    fit()
    line_of_fit = fit.__code__.co_firstlineno + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        here = sys._getframe().f_lineno + 1
        caller.warn("said on the training thread")
        thread = threading.Thread(target=caller.warn, args=("said on an export thread",))
        thread.start()
        thread.join()
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, here), (__file__, line_of_fit)]
    assert here != line_of_fit


def test_a_warning_from_an_export_thread_of_a_python_c_script_is_said_not_raised():
    import subprocess
    import sys

    script = (
        "import threading; from keras_tflite import caller; caller.remember()\n"
        "t = threading.Thread(target=caller.warn, args=('from a thread',)); t.start(); t.join()\n"
        "print('went on')"
    )  # `python -c`'s __main__ cannot serve its source: reading it must not fail the export
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "went on", done.stderr
    assert "<string>:1: UserWarning: from a thread" in done.stderr


def test_the_tensorflow_internals_re_quantization_watches_are_in_the_installed_version():
    """A canary: when TensorFlow renames these, exports still land (converted in full), but
    each one costs a full conversion again: this says so before a user's fit does."""
    import tensorflow as tf
    from tensorflow.lite.python import lite

    from keras_tflite import compat

    @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32)])
    def double(x):
        return 2.0 * x

    converter = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()])
    assert compat.quantizer_step(converter) is not None
    for name in ("_get_sparsity_modes", "_get_model_hash", "_populate_conversion_metadata"):
        assert hasattr(lite, name), name
    with compat.eager():  # tf.executing_eagerly() already: a pass-through
        assert tf.executing_eagerly()
