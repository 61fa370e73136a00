"""tensorflow-model-optimization models through the callback: QAT (learned ranges) and pruning."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot
import tf_keras
from sklearn.datasets import load_digits

from keras_tflite import TFLiteExportCallback, convert, prepare_qat
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training

L = tf_keras.layers


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return (x[:1200], data.target[:1200]), (x[1200:1500], data.target[1200:1500])


def _cnn():
    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential(
        [
            tf_keras.Input((8, 8, 1), name="digit"),
            L.Conv2D(8, 3, name="conv"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax", name="classes"),
        ]
    )


def _compiled(model):
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _zero_fraction_of_largest_weights(tflite: bytes) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    inputs = {d["index"] for d in interpreter.get_input_details()}
    weights = []
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] == np.int8 and detail["index"] not in inputs:
            try:
                weights.append(interpreter.get_tensor(detail["index"]))
            except ValueError:  # activations have no data before invoke
                continue
    largest = max(weights, key=np.size)
    return float(np.mean(largest == 0))


def test_qat_model_exports_full_int8_with_its_learned_ranges(tmp_path, digits):
    train, val = digits
    model = _compiled(prepare_qat(_cnn()))
    callback = TFLiteExportCallback(
        tmp_path, validation_data=val, num_validation_samples=len(val[0]), blocking=True, verbose=0
    )
    history = model.fit(
        *train, epochs=2, batch_size=32, validation_data=val, callbacks=[callback], verbose=0
    )

    manifest = read_manifest(tmp_path / "best")
    assert manifest["calibration"]["samples"] == 0
    assert manifest["calibration"]["ranges"] == "learned (quantization-aware training)"
    assert manifest["trained_on"] == "tf_keras"
    assert manifest["path"] == "converted"  # learned ranges: nothing to calibrate again
    assert manifest["inputs"][0]["dtype"] == "int8" and manifest["outputs"][0]["dtype"] == "int8"
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(manifest["ops"])
    # The input scale is the range the QuantizeLayer learned, not one calibrated from data.
    learned = {
        w.name.split("/")[-1].split(":")[0]: float(w.numpy()) for w in model.layers[0].weights
    }
    expected_scale = (learned["quantize_layer_max"] - learned["quantize_layer_min"]) / 255
    assert manifest["inputs"][0]["scale"] == pytest.approx(expected_scale, rel=1e-3)
    # Judged on TFLite Micro like any export: the microcontroller's accuracy is the float one's
    # (and the float one is still Keras' own: exporting must not change how it scores).
    metrics = manifest["metrics"]
    assert metrics["tflite_arena_bytes"] > 0
    assert metrics["tflite_val_accuracy"] == pytest.approx(
        history.history["val_accuracy"][-1], abs=0.02
    )


def test_layer_tfmot_cannot_wrap_is_named_with_the_fix():
    model = tf_keras.Sequential(
        [
            tf_keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, name="conv"),
            L.ReLU(name="act"),
            L.BatchNormalization(name="norm"),
            L.Flatten(),
            L.Dense(10),
        ]
    )
    with pytest.raises(
        ValueError,
        match=r"layer 'norm' \(BatchNormalization\) after 'act'.*move it before the activation",
    ):
        prepare_qat(model)


def test_prepare_qat_names_the_keras_requirement():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="TF_USE_LEGACY_KERAS=1.*Received: a Keras 3 model"):
        prepare_qat(model)


def test_qat_model_refuses_a_mode_its_ranges_cannot_serve():
    with pytest.raises(ValueError, match="quantization-aware.*Received: quantization='float16'"):
        convert(prepare_qat(_cnn()), quantization="float16")


def test_pruned_model_exports_stripped_and_reports_its_sparsity(tmp_path, digits):
    train, val = digits
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.6, begin_step=0, frequency=10)
    model = _compiled(tfmot.sparsity.keras.prune_low_magnitude(_cnn(), pruning_schedule=schedule))
    callback = TFLiteExportCallback(tmp_path, train, val, blocking=True, verbose=0)
    model.fit(
        *train,
        epochs=2,
        batch_size=32,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), callback],
        verbose=0,
    )

    manifest = read_manifest(tmp_path / "best")
    pruning = manifest["pruning"]
    assert set(pruning["sparsity"]) == {"conv", "classes"}  # the layers with weights to prune
    assert all(s == pytest.approx(0.6, abs=0.01) for s in pruning["sparsity"].values())
    assert pruning["model_bytes"] == manifest["model_bytes"]
    assert pruning["gzip_bytes"] < 0.8 * pruning["model_bytes"]
    # The wrappers are gone and the zeros are in the deployed int8 weights.
    tflite = (tmp_path / "best" / "model.tflite").read_bytes()
    assert _zero_fraction_of_largest_weights(tflite) >= 0.55
    assert manifest["metrics"]["tflite_arena_bytes"] > 0  # it runs in TFLite Micro
    assert manifest["calibration"]["ranges"] == "calibrated"
