"""TF2 SavedModels with LSTM and GRU layers (Keras 3 `export`, `tf.saved_model.save` of a module,
tf_keras `save`) convert like their `.keras` twins: the fused LSTM op or one compact GRU loop,
named by the signature, right against the float model in TFLite Micro; a loop that cannot be
rebuilt fails saying which layer and what to change."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import FEATURES, STEPS, build

from keras_tflite import MicroModel
from keras_tflite.cli import main

pytestmark = pytest.mark.slow  # real conversions and runtimes

RNG = np.random.default_rng(0)
SERIES = np.cumsum(RNG.normal(0, 0.3, (300, STEPS, FEATURES)), axis=1).astype(np.float32)


def _convert(source, tmp_path, name, capsys):
    """`keras-tflite convert source --json` with SERIES as input `name`: (exit code, report)."""
    np.savez(tmp_path / "cal.npz", **{name: SERIES[:200]})
    np.savez(tmp_path / "val.npz", **{name: SERIES[200:]})
    code = main(["convert", str(source), "-o", str(tmp_path / "out"), "--json",
                 "--calibration", str(tmp_path / "cal.npz"),
                 "--validation", str(tmp_path / "val.npz")])  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


def _micro_error(tmp_path, expected) -> float:
    """TFLite Micro's mean absolute error against the float model, over the float's spread."""
    micro = MicroModel((tmp_path / "out" / "model.tflite").read_bytes()).predict(SERIES[200:])
    return float(np.mean(np.abs(micro - expected))) / float(np.std(expected))


def _names(tmp_path, report) -> dict[str, list[str]]:
    """The input and output names as the report, the manifest and model_ops.h give them."""
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    header = (tmp_path / "out" / "model_ops.h").read_text()
    names = {
        "report": [t["name"] for t in report["inputs"] + report["outputs"]],
        "manifest": [t["name"] for t in manifest["inputs"] + manifest["outputs"]],
    }
    names["header"] = [n for n in names["manifest"] if f"'{n}'" in header]
    return names


def test_a_keras_3_lstm_export_becomes_the_fused_op_named_by_its_signature(tmp_path, capsys):
    model = build("lstm")
    model.export(str(tmp_path / "saved"), verbose=False)  # the user's report (issue 23)

    code, report = _convert(tmp_path / "saved", tmp_path, "series", capsys)

    assert code == 0, report.get("error")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report["ops"] and "WHILE" not in report["ops"]
    # The .keras twin measured 4,416 B; the same layer as a loop 10 KB and more, unrolled ~90 KB.
    assert report["model_bytes"] < 6_000
    assert all(n == ["series", "output_0"] for n in _names(tmp_path, report).values())
    assert "kOutput0OutputIndex" in (tmp_path / "out" / "model_ops.h").read_text()
    assert _micro_error(tmp_path, model.predict(SERIES[200:], verbose=0)) <= 0.05


def test_a_keras_3_gru_in_a_saved_module_becomes_one_compact_loop(tmp_path, capsys):
    model = build("gru")  # reset_after=True, Keras 3's default: a two-row bias

    class Forecaster(tf.Module):
        def __init__(self, model):
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, STEPS, FEATURES], name="window")])
        def __call__(self, window):
            return {"forecast": self.model(window)}

    module = Forecaster(model)
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures=module.__call__)

    code, report = _convert(tmp_path / "saved", tmp_path, "window", capsys)

    assert code == 0, report.get("error")
    assert report["ops"].count("WHILE") == 1
    assert report["model_bytes"] < 15_000  # the .keras twin measured 10,320 B
    assert all(n == ["window", "forecast"] for n in _names(tmp_path, report).values())
    assert _micro_error(tmp_path, model.predict(SERIES[200:], verbose=0)) <= 0.05


def test_a_tf_keras_bidirectional_lstm_saved_model_becomes_two_fused_ops(tmp_path, capsys):
    model = build("bidirectional_lstm", "tf_keras")
    model.save(str(tmp_path / "saved"))  # tf_keras 2.21 still writes the SavedModel format

    code, report = _convert(tmp_path / "saved", tmp_path, "series", capsys)

    assert code == 0, report.get("error")
    assert report["ops"].count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    assert "WHILE" not in report["ops"]
    assert _micro_error(tmp_path, model.predict(SERIES[200:], verbose=0)) <= 0.05


def test_an_lstm_that_cannot_be_rebuilt_says_which_layer_and_what_to_change(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(0)
    series = keras.Input((STEPS, FEATURES), name="series")
    hidden = keras.layers.LSTM(8, recurrent_activation="relu", name="gate_relu")(series)
    keras.Model(series, keras.layers.Dense(1)(hidden)).export(
        str(tmp_path / "saved"), verbose=False
    )

    code, report = _convert(tmp_path / "saved", tmp_path, "series", capsys)

    assert code == 1 and not (tmp_path / "out").exists()
    error = report["error"]
    assert "the LSTM layer 'functional" in error and "gate_relu" in error  # its Keras scope
    assert "recurrent_activation='sigmoid'" in error and "retrain" in error
    # Advice for TensorFlow's own kernels never reaches a microcontroller's user, nor MLIR.
    assert "Select" not in error and "SELECT_TF_OPS" not in error and "<unknown>" not in error
    assert "StatefulPartitionedCall" not in error and len(error) < 1_000
