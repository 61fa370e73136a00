"""A runtime that refuses or crashes on a model does not take the export with it: each runtime
is judged on its own, LiteRT is retried without its XNNPACK delegate, and TFLite Micro's
verdict stands. Real models, real runtimes, a real segfault in a real worker."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build, sample_inputs
from tensorboard.backend.event_processing import plugin_event_accumulator

from keras_tflite import TFLiteExportCallback
from keras_tflite.deploy.artifacts import read_manifest
from keras_tflite.runtime.micro import MicroModel

pytestmark = pytest.mark.slow  # real conversions and training


def _squeeze_excite_cnn():
    """A small CNN with a squeeze-and-excitation block whose one-unit bottleneck is dead (its
    ReLU never fires: negative weights on non-negative pooled features), as small SE
    bottlenecks end up. Its int8 output range is [0, 0], which LiteRT's XNNPACK delegate
    refuses ("failed to create XNNPACK runtime") while TFLite Micro runs the model."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    image = keras.Input((12, 12, 3), name="image")
    features = layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    squeezed = layers.GlobalAveragePooling2D()(features)
    dead = keras.initializers.RandomUniform(-2.0, -1.0)
    squeezed = layers.Dense(1, activation="relu", kernel_initializer=dead)(squeezed)
    gates = layers.Reshape((1, 1, 4))(layers.Dense(4, activation="sigmoid")(squeezed))
    excited = layers.Multiply()([features, gates])
    scores = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(excited))
    return keras.Model(image, scores)


def _tags(run_dir):
    accumulator = plugin_event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator.Tags()["tensors"]


def _scalar(run_dir, tag):
    accumulator = plugin_event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)}


def _fit(model, x, y, directory, epochs, **options):
    """A blocking fit with the callback at its defaults; (history, printed lines, warnings)."""
    callback = TFLiteExportCallback(
        directory, (x[:120], y[:120]), (x[120:], y[120:]), blocking=True, **options
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x[:120], y[:120], epochs=epochs, callbacks=[callback], verbose=0)
    return history.history, [str(w.message) for w in caught]


def test_a_model_xnnpack_refuses_is_judged_kept_and_summarized(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (160, 12, 12, 3)).astype(np.float32)
    y = np.clip((x[..., 0].mean((1, 2)) * 3).astype(np.int32), 0, 2)
    model = _squeeze_excite_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = tmp_path / "logs"
    history, said = _fit(model, x, y, tmp_path / "exports", 2, log_dir=logs)

    records = [json.loads(r) for r in (tmp_path / "exports" / "history.jsonl").open()]
    assert [r["exportable"] for r in records] == [True, True], records
    best = read_manifest(tmp_path / "exports" / "best")
    assert best is not None
    # tflite_val_* are TFLite Micro's: the kept model's loss, recomputed in TFLite Micro.
    micro = MicroModel((tmp_path / "exports" / "best" / "model.tflite").read_bytes())
    loss = keras.losses.sparse_categorical_crossentropy(y[120:], micro.predict(x[120:]))
    assert best["metrics"]["tflite_val_loss"] == pytest.approx(float(np.mean(loss)), rel=1e-4)
    assert len(history["tflite_val_loss"]) == 2
    # LiteRT ran it on its builtin kernels, and the note says why.
    assert all("tflite_litert_val_loss" in r["metrics"] for r in records)
    note = next(w for w in best["warnings"] if "LiteRT" in w)
    assert "XNNPACK refused it" in note and "builtin kernels" in note
    out = capsys.readouterr()
    assert out.out.count("XNNPACK refused it") == 1  # a note is said once
    assert "Created TensorFlow Lite XNNPACK delegate" not in out.err + out.out
    assert not [w for w in said if "TensorBoard" in w], said
    assert sorted(_scalar(logs / "validation_tflite", "epoch_loss")) == [0, 1]
    assert "fidelity/mae_vs_float" in _tags(logs / "tflite")


@pytest.mark.parametrize("runtime", ["litert", "micro"])
def test_a_segfault_in_one_runtime_leaves_the_other_runtimes_verdict(
    runtime, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", f"judge-{runtime}:segfault")
    x = sample_inputs(build("mlp"), 160)["features"]
    y = (x[:, :1] * 0.5).astype(np.float32)
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    logs = tmp_path / "logs"
    history, said = _fit(model, x, y, tmp_path / "exports", 1, log_dir=logs)

    out = capsys.readouterr().out
    crashed = "crashed running it (the worker process died with SIGSEGV)"
    if runtime == "litert":  # judged, gated and kept on TFLite Micro's numbers
        best = read_manifest(tmp_path / "exports" / "best")
        assert best is not None and best["epoch"] == 1
        assert history["tflite_val_loss"][0] == best["metrics"]["tflite_val_loss"]
        assert not [k for k in best["metrics"] if k.startswith("tflite_litert")]
        note = f"LiteRT {crashed}: judged on TFLite Micro alone"
        assert best["warnings"] == [note] and note in out
    else:  # not deployable, said so; LiteRT's numbers are still reported
        record = json.loads((tmp_path / "exports" / "history.jsonl").read_text())
        assert record["reason"] == f"TFLite Micro {crashed}"
        assert f"not exportable: TFLite Micro {crashed}" in out
        assert not (tmp_path / "exports" / "best").exists()
        assert "tflite_litert_val_loss" in record["metrics"] and "tflite_val_loss" not in history
    assert not [w for w in said if "TensorBoard" in w], said
    assert "images/predictions_float_vs_int8" in _tags(logs / "tflite")
