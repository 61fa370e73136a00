"""TFLiteExportCallback in real model.fit runs: logs, best-keeping, artifacts, failures survived."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import build, sample_inputs

from keras_tflite import TFLiteExportCallback, TFLiteModel
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training


@pytest.fixture(scope="module")
def data():
    x = sample_inputs(build("lstm"), 240)["series"]
    y = (x[:, -1, :1] * 0.5).astype(np.float32)
    return (x[:160], y[:160]), (x[160:], y[160:])


def _model():
    model = build("lstm")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def _history(directory):
    return [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]


def test_blocking_exports_join_each_epochs_logs_and_keep_the_best(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True, all_logs=True, verbose=0)
    history = _model().fit(*train, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    losses = history.history["tflite_val_loss"]
    assert len(losses) == 3 and len(history.history["tflite_val_mae"]) == 3
    assert all(v < 0.05 for v in history.history["tflite_mae_vs_float"])
    # LiteRT, the desktop runtime, scored the same way beside what the microcontroller computes.
    assert history.history["tflite_litert_val_loss"] == pytest.approx(losses, rel=0.05)
    records = _history(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    best_epoch = 1 + int(np.argmin(losses))
    manifest = read_manifest(tmp_path / "best")
    assert manifest is not None and manifest["epoch"] == best_epoch
    assert manifest["value"] == pytest.approx(min(losses))
    assert manifest["ops"].count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    assert manifest["inputs"][0]["name"] == "series"
    # Converted once, then each snapshot re-quantized; a new best is checked against its full
    # conversion before it is kept.
    assert [r["conversion"] for r in records] == ["converted", "requantized", "requantized"]
    assert manifest["path"] == ("requantized" if best_epoch > 1 else "converted")
    checked = "identical bytes" if best_epoch > 1 else "converted in full"
    assert manifest["verified"] == checked


def test_c_array_holds_exactly_the_tflite_bytes(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(
        tmp_path, train, val, blocking=True, c_symbol="forecast", verbose=0
    )
    _model().fit(*train, epochs=1, callbacks=[callback], verbose=0)
    tflite = (tmp_path / "best" / "model.tflite").read_bytes()
    source = (tmp_path / "best" / "model_data.cc").read_text()
    header = (tmp_path / "best" / "model_data.h").read_text()
    body = source.split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == tflite
    assert "alignas(16) const unsigned char forecast[]" in source
    assert f"const unsigned int forecast_len = {len(tflite)};" in source
    assert (
        "#ifndef FORECAST_DATA_H_" in header and "extern const unsigned int forecast_len;" in header
    )
    np.testing.assert_allclose(
        TFLiteModel(tflite).predict(val[0][:4]), TFLiteModel(tflite).predict(val[0][:4])
    )


def test_background_exports_do_not_block_and_finish_by_train_end(tmp_path, data, capsys):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, verbose=1)
    _model().fit(*train, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    records = _history(tmp_path)
    assert 1 <= len(records) <= 3 and records[-1]["epoch"] == 3  # stale snapshots coalesce
    assert read_manifest(tmp_path / "best") is not None
    assert re.search(
        r"Epoch 3: (\(epochs? [\d, -]+ not exported\) )?int8 [\d.]+ KB, arena [\d.]+ KB, "
        r"~[\d.]+M instructions, tflite_val_loss",
        capsys.readouterr().out,
    )


def test_export_every_n_batches(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, export_freq=3, blocking=True, verbose=0)
    _model().fit(*train, epochs=1, batch_size=32, callbacks=[callback], verbose=0)  # 5 batches
    assert [r["step"] for r in _history(tmp_path)] == [3]


def test_crashing_conversions_never_stop_fit(tmp_path, data, monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "keras_frozen:segfault")
    train, val = data
    callback = TFLiteExportCallback(
        tmp_path, train, val, strategies=["keras_frozen"], blocking=True, verbose=0
    )
    history = _model().fit(*train, epochs=2, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) == 2
    records = _history(tmp_path)
    assert len(records) == 2 and not any(r["exportable"] for r in records)
    assert "SIGSEGV" in records[0]["reason"]
    assert not (tmp_path / "best").exists()


def test_flat_line_model_is_detected_and_never_kept(tmp_path, data):
    train, val = data
    # Calibration on near-constant inputs: int8 ranges too narrow for real data.
    narrow = np.full_like(train[0], 0.01) + np.random.default_rng(0).normal(0, 1e-3, train[0].shape)
    callback = TFLiteExportCallback(
        tmp_path, narrow.astype(np.float32), val, blocking=True, verbose=0
    )
    _model().fit(*train, epochs=1, callbacks=[callback], verbose=0)
    (record,) = _history(tmp_path)
    assert not record["exportable"], record
    assert record["reason"].startswith("flat-line output in TFLite Micro")
    # The evidence that calibration is the cause: it did not cover the validation inputs.
    assert "calibration samples of input 'series' span" in record["reason"]
    assert not (tmp_path / "best").exists()


def test_early_stopping_can_watch_the_int8_loss(tmp_path, data):
    train, val = data
    export = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    # Keras cannot infer the direction of a key it did not create: say mode="min".
    stop = keras.callbacks.EarlyStopping(
        monitor="tflite_val_loss", mode="min", patience=0, min_delta=10.0
    )
    history = _model().fit(*train, epochs=5, callbacks=[export, stop], verbose=0)
    assert len(history.history["loss"]) == 2  # no improvement of 10.0 after the first epoch


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantization": "int4"}, "Expected quantization to be one of"),
        (
            {"export_freq": 0},
            "Expected export_freq to be .epoch., .improvement. or a positive number of batches. Received: 0",
        ),
        (
            {"mode": "best"},
            r"Expected mode to be one of \('auto', 'min', 'max'\). Received: mode='best'",
        ),
        ({"c_symbol": "model-data"}, "Expected c_symbol to be a C identifier"),
    ],
)
def test_bad_options_fail_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TFLiteExportCallback(tmp_path, np.zeros((4, 24, 3), np.float32), **kwargs)


def test_unwritable_directory_fails_at_construction(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(
        ValueError, match="Expected directory to be a writable folder. Received: '.*a_file/exports'"
    ):
        TFLiteExportCallback(blocker / "exports", np.zeros((4, 24, 3), np.float32))


def test_mismatched_data_fails_before_the_first_epoch(tmp_path):
    model = _model()
    callback = TFLiteExportCallback(tmp_path, np.zeros((50, 10, 3), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"input 'series'.*\(24, 3\) in batches.*\(50, 10, 3\)"):
        model.fit(np.zeros((8, 24, 3)), np.zeros((8, 1)), epochs=3, callbacks=[callback], verbose=0)
    assert not (tmp_path / "history.jsonl").exists()


def test_tf_keras_model_trains_with_the_callback(tmp_path, data):
    train, val = data
    model = build("lstm", "tf_keras")
    model.compile(optimizer="adam", loss="mse")
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    history = model.fit(*train, epochs=2, callbacks=[callback], verbose=0)
    assert len(history.history["tflite_val_loss"]) == 2
    assert read_manifest(tmp_path / "best")["strategy"] == "tf_keras_concrete"


def test_export_on_float_improvement_follows_the_float_metric(tmp_path, data):
    train, val = data
    # Targets unrelated to the inputs: the float val_loss wanders, up on some epochs.
    noise = np.random.default_rng(3).normal(0, 1, val[1].shape).astype(np.float32)
    callback = TFLiteExportCallback(
        tmp_path, train, val, export_freq="improvement", blocking=True, verbose=0
    )
    model = build("lstm")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    history = model.fit(
        *train, validation_data=(val[0], noise), epochs=5, callbacks=[callback], verbose=0
    )
    val_loss = history.history["val_loss"]
    improving = [e + 1 for e, v in enumerate(val_loss) if v <= min(val_loss[: e + 1])]
    assert len(improving) < 5, val_loss  # some epoch did not improve: the test can fail
    assert [r["epoch"] for r in _history(tmp_path)] == improving


def test_keep_last_bounds_export_folders_and_never_drops_the_best(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(
        tmp_path, train, val, save_best_only=False, keep_last=2, blocking=True, verbose=0
    )
    _model().fit(*train, epochs=5, callbacks=[callback], verbose=0)
    # Export folders sit beside best/ and history.jsonl, in the directory given.
    folders = sorted(p for p in tmp_path.glob("epoch*") if p.is_dir())
    best = (tmp_path / "best").resolve()
    assert best in folders
    others = [f for f in folders if f != best]
    assert len(others) == 2  # keep_last besides the best, also when the newest is the best
    assert all(read_manifest(f) is not None for f in folders)
    # history.jsonl never points at a folder keep_last removed; it says why it is gone.
    records = _history(tmp_path)
    assert {Path(r["path"]).name for r in records if r.get("path")} == {f.name for f in folders}
    removed = [r for r in records if r.get("removed")]
    assert len(removed) == 5 - len(folders) and all(r["path"] is None for r in removed)
    assert all(r["removed"] == "keep_last=2" for r in removed)


def test_resumed_run_never_replaces_a_better_best(tmp_path, data):
    train, val = data
    first = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    model = _model()
    model.fit(*train, epochs=3, callbacks=[first], verbose=0)
    kept = read_manifest(tmp_path / "best")
    worse = build("lstm")
    weights = model.get_weights()
    weights[-1] = weights[-1] + 5.0  # every forecast off by 5: a far worse int8 loss
    worse.set_weights(weights)
    worse.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    again = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    worse.fit(*train, epochs=1, callbacks=[again], verbose=0)
    assert read_manifest(tmp_path / "best") == kept
    assert _history(tmp_path)[-1]["new_best"] is False


def test_int8_and_float_figures_are_on_the_same_stated_samples(tmp_path, data, capsys):
    from keras_tflite import MicroModel
    from keras_tflite.data.validation import validation_samples
    from keras_tflite.specs import input_infos

    train, val = data
    model = _model()
    callback = TFLiteExportCallback(tmp_path, train, val, num_validation_samples=50, blocking=True)
    model.fit(*train, validation_data=val, epochs=1, callbacks=[callback], verbose=0)
    line = capsys.readouterr().out
    assert re.search(
        r"Epoch 1: int8 [\d.]+ KB, arena [\d.]+ KB, ~[\d.]+M instructions, "
        r"tflite_val_loss [\d.]+ \(float [\d.]+\), "
        r"MAE vs float [\d.e-]+ in TFLite Micro, on 50 of 80 samples - new best, saved to .*best",
        line,
    ), line
    record = _history(tmp_path)[-1]
    assert record["validation"] == {"samples": 50, "available": 80}
    judged_on = validation_samples(val, input_infos(model), 50, seed=0)  # the callback's draw
    x, y = judged_on.inputs["series"], judged_on.targets[0]
    micro = MicroModel((tmp_path / "best" / "model.tflite").read_bytes()).predict(x)
    assert record["value"] == pytest.approx(float(np.mean((micro - y) ** 2)), rel=1e-4)
    float_loss = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    assert record["float_value"] == pytest.approx(float_loss, rel=1e-4)
    assert record["float_metrics"]["mae"] == pytest.approx(
        float(np.mean(np.abs(model.predict(x, verbose=0) - y))), rel=1e-4
    )


def test_export_lines_sit_on_their_own_lines_and_logs_keep_the_main_figures(tmp_path, data, capsys):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True)
    history = _model().fit(*train, validation_data=val, epochs=2, callbacks=[callback], verbose=1)
    printed = capsys.readouterr().out
    for epoch in (1, 2):  # never glued to the end of Keras' progress bar
        assert re.search(rf"(^|\n)Epoch {epoch}: int8 ", printed), printed
    assert {k for k in history.history if k.startswith("tflite_")} == {
        "tflite_val_loss",  # the monitor, and the compiled metrics as TFLite Micro computes them
        "tflite_val_mae",
        "tflite_mae_vs_float",
        "tflite_model_bytes",
        "tflite_arena_bytes",
    }
    assert "tflite_litert_val_loss" in _history(tmp_path)[-1]["metrics"]  # the rest, recorded


def test_a_monitor_that_never_appears_warns_with_the_available_keys(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(
        tmp_path, train, val, monitor="val_f1", mode="max", blocking=True, verbose=0
    )
    with pytest.warns(
        UserWarning, match=r"watching 'val_f1'.*Available keys: \[.*'tflite_val_loss'"
    ) as caught:
        _model().fit(*train, epochs=1, callbacks=[callback], verbose=0)
    (said,) = [w for w in caught if "watching" in str(w.message)]
    assert said.filename == __file__  # the line calling fit, not the library's


def test_classifier_is_judged_by_accuracy_and_top1_agreement(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import classify_digits

    keras.utils.set_random_seed(0)
    train, val = classify_digits.digits()
    model = classify_digits.build_model()
    callback = TFLiteExportCallback(
        tmp_path, train, val, monitor="tflite_val_accuracy", blocking=True, all_logs=True,
        verbose=0,
    )  # fmt: skip
    history = model.fit(*train, validation_data=val, epochs=3, callbacks=[callback], verbose=0)
    h = history.history
    assert h["tflite_val_accuracy"][-1] == pytest.approx(h["val_accuracy"][-1], abs=0.03)
    assert h["tflite_top1_agreement_vs_float"][-1] >= 0.95
    assert h["tflite_litert_top1_agreement_vs_float"][-1] >= 0.95
    manifest = read_manifest(tmp_path / "best")
    assert manifest["value"] == pytest.approx(max(h["tflite_val_accuracy"]))  # mode auto -> max


def test_every_n_epochs_and_the_last_epoch(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(
        tmp_path, train, val, every_n_epochs=2, blocking=True, verbose=0
    )
    _model().fit(*train, epochs=3, callbacks=[callback], verbose=0)
    assert [r["epoch"] for r in _history(tmp_path)] == [2, 3]


def test_batch_frequency_counts_batches_under_steps_per_execution(tmp_path, data):
    train, val = data
    model = build("lstm")
    model.compile(optimizer="adam", loss="mse", steps_per_execution=2)
    callback = TFLiteExportCallback(tmp_path, train, val, export_freq=4, blocking=True, verbose=0)
    model.fit(*train, epochs=1, batch_size=16, callbacks=[callback], verbose=0)  # 10 batches
    assert [r["step"] for r in _history(tmp_path)] == [4, 8]


def test_a_failure_writing_artifacts_is_recorded_and_fit_goes_on(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    (tmp_path / "best").mkdir()  # a real folder where the best link must go
    (tmp_path / "best" / "notes.txt").write_text("the user's own file")
    history = _model().fit(*train, epochs=2, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) == 2
    records = _history(tmp_path)
    assert len(records) == 2 and all(not r["exportable"] for r in records)
    assert "best" in records[0]["reason"]
    assert (tmp_path / "best" / "notes.txt").read_text() == "the user's own file"


@pytest.mark.parametrize(
    "budget, reason",
    [
        ({"max_model_bytes": 1000}, r"model_bytes \d+ > max_model_bytes 1000: it does not fit"),
        ({"max_arena_bytes": 1000}, r"arena_bytes \d+ > max_arena_bytes 1000: it does not fit"),
        ({"max_error": 0.0}, r"TFLite Micro MAE vs float [\d.e-]+ > max_error 0"),
        (
            {"max_normalized_rmse": 0.0},
            r"not a faithful copy in TFLite Micro: normalized RMSE vs float [\d.e-]+ > "
            r"max_normalized_rmse 0 .* int8 output steps\) although calibration saw 160 samples",
        ),
    ],
)
def test_budgets_and_error_limits_gate_exportability(tmp_path, data, budget, reason):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0, **budget)
    _model().fit(*train, epochs=1, callbacks=[callback], verbose=0)
    (record,) = _history(tmp_path)
    assert not record["exportable"] and re.search(reason, record["reason"]), record["reason"]
    assert record["closer_to_float"] in ("LiteRT", "TFLite Micro", "neither (equal)")
    assert not (tmp_path / "best").exists()


def test_float_islands_are_reported_once(tmp_path, capsys):
    model = build("gru")
    model.compile(optimizer="adam", loss="mse")
    x = sample_inputs(model, 100)["series"]
    y = x[:, -1, :1]
    callback = TFLiteExportCallback(tmp_path, (x, y), (x, y), blocking=True)
    model.fit(x, y, epochs=2, callbacks=[callback], verbose=0)
    record = _history(tmp_path)[-1]
    assert any("float islands" in w and "WHILE" in w for w in record["warnings"])
    printed = capsys.readouterr().out
    assert printed.count("float islands") == 1, printed
    assert (
        json.loads((tmp_path / "best" / "manifest.json").read_text())["warnings"]
        == record["warnings"]
    )


def test_validation_data_of_the_wrong_shape_fails_before_training(tmp_path, data):
    train, val = data
    callback = TFLiteExportCallback(tmp_path, train, (val[0][:, :, :2], val[1]), verbose=0)
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(
        ValueError,
        match=r"validation_data input 'series' \(sample 0\) to have per-sample shape \(24, 3\) in batches\. Received: an array of shape \(80, 24, 2\)",
    ):
        model.fit(*train, epochs=1, callbacks=[callback], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # no step ran
