"""Every architecture converts to full int8, runs in LiteRT and TFLite Micro, and stays close to float."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import build, keras_predict, sample_inputs

import keras_tflite

pytestmark = pytest.mark.slow  # real conversions and training

# int8 keeps 256 levels per tensor: each quantized layer adds up to half a step of rounding, and
# the calibrated range of a tensor spans a few standard deviations of its values. Across these
# small models the mean error measured 0.3-3% of the output's spread; 8% is the line beyond
# which a deployer would see a visibly different curve (a flat line measures ~80%).
MAX_NORMALIZED_MAE = 0.08
# SimpleRNN's loop rounds once per step: 0.09 measured over 24 steps.
TOLERANCE = {"simple_rnn": 0.15}

KERAS3 = [
    "mlp",
    "conv2d_bn",
    "depthwise",
    "conv1d",
    "lstm",
    "stacked_lstm",
    "lstm_sequences",
    "bidirectional_lstm",
    "conv_lstm",
    "gru",
    "simple_rnn",
    "two_input",
    "embedding_lstm",
]
TF_KERAS = [
    "mlp",
    "conv2d_bn",
    "lstm",
    "gru",
    "simple_rnn",
    "bidirectional_lstm",
    "two_input",
    "embedding_lstm",
]
FUSED_LSTMS = {
    "lstm": 1,
    "stacked_lstm": 2,
    "lstm_sequences": 1,
    "bidirectional_lstm": 2,
    "conv_lstm": 1,
    "two_input": 1,
    "embedding_lstm": 1,
}


def normalized_mae(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean(np.abs(got - expected)) / (np.std(expected) + 1e-6))


def _convert_and_run(name: str, framework: str):
    model = build(name, framework)
    calibration = sample_inputs(model, 200, seed=1)
    validation = sample_inputs(model, 24, seed=2)
    result = keras_tflite.convert(model, calibration)
    expected = keras_predict(model, validation)
    lite = keras_tflite.TFLiteModel(result.tflite).predict(validation)
    micro = keras_tflite.MicroModel(result.tflite).predict(validation)
    as_list = lambda out: out if isinstance(out, list) else [out]  # noqa: E731
    return model, result, expected, as_list(lite), as_list(micro)


def _check(name, result, expected, lite, micro):
    assert result.inputs and all(t.dtype in ("int8", "int32") for t in result.inputs)
    assert all(t.dtype == "int8" for t in result.outputs)
    for e, got_lite, got_micro in zip(expected, lite, micro):
        assert got_lite.shape == e.shape and got_micro.shape == e.shape
        bound = TOLERANCE.get(name, MAX_NORMALIZED_MAE)
        assert normalized_mae(got_lite, e) < bound, name
        assert normalized_mae(got_micro, e) < bound, name
    if name in FUSED_LSTMS:
        assert result.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == FUSED_LSTMS[name]
        assert "WHILE" not in result.ops


@pytest.mark.parametrize("name", KERAS3)
def test_keras3_architecture_converts_to_int8_that_both_runtimes_run(name):
    _, result, expected, lite, micro = _convert_and_run(name, "keras")
    _check(name, result, expected, lite, micro)


@pytest.mark.parametrize("name", TF_KERAS)
def test_tf_keras_architecture_converts_to_int8_that_both_runtimes_run(name):
    _, result, expected, lite, micro = _convert_and_run(name, "tf_keras")
    assert result.strategy == "tf_keras_concrete"
    assert len(result.ops) < 60  # recurrent layers as fused ops or compact loops, never unrolled
    _check(name, result, expected, lite, micro)


def test_keras3_lstm_is_fused_and_as_small_as_tf_keras():
    keras3 = build("lstm", "keras")
    legacy = build("lstm", "tf_keras")
    legacy.set_weights(keras3.get_weights())
    data = sample_inputs(keras3, 100)
    ours = keras_tflite.convert(keras3, data)
    reference = keras_tflite.convert(legacy, data)
    assert ours.strategy == "keras_frozen"
    assert ours.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    assert ours.size <= 1.05 * reference.size


def test_integer_inputs_pass_through_unquantized():
    model = build("embedding_lstm")
    result = keras_tflite.convert(model, sample_inputs(model, 50))
    (tokens,) = result.inputs
    assert tokens.name == "tokens" and tokens.dtype == "int32" and tokens.scale == 0.0


def test_two_input_model_is_matched_by_name_whatever_the_order():
    model = build("two_input")
    data = sample_inputs(model, 100)
    result = keras_tflite.convert(model, {"meta": data["meta"], "series": data["series"]})
    assert [t.name for t in result.inputs] == ["series", "meta"]
    assert [t.name for t in result.outputs] == ["level", "kind"]
    runner = keras_tflite.TFLiteModel(result.tflite)
    swapped = runner.predict({"meta": data["meta"][:5], "series": data["series"][:5]})
    ordered = runner.predict([data["series"][:5], data["meta"][:5]])
    np.testing.assert_array_equal(swapped[0], ordered[0])


def test_result_records_every_strategy_tried_and_why():
    model = build("gru")
    result = keras_tflite.convert(model, sample_inputs(model, 50))
    statuses = {a.strategy: a for a in result.attempts}
    assert statuses["tf_keras_concrete"].status == "skipped"
    assert "keras model" in statuses["tf_keras_concrete"].reason
    assert statuses[result.strategy].status == "converted"


def test_conversions_leave_no_temporary_folders_behind(tmp_path, monkeypatch):
    import tempfile

    from keras_tflite.worker import shared

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # other tests' folders stay out
    shared.stop()  # the worker convert() calls share keeps a folder while it lives
    model = build("mlp")
    result = keras_tflite.convert(
        model, sample_inputs(model, 120), strategies=["keras_saved_model"]
    )
    assert result.strategy == "keras_saved_model"
    assert [p.name for p in private.iterdir()] == [shared.current().log_path.parent.name]
    shared.stop()
    assert list(private.iterdir()) == []
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    path = result.save(tmp_path / "model.tflite")  # atomically: no temporary file beside it
    assert path.read_bytes() == result.tflite and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "mode, input_dtype, calibrated",
    [
        ("int8", "int8", True),
        ("int8_float_io", "float32", True),
        ("int16x8", "int16", True),
        ("float16", "float32", False),
        ("dynamic", "float32", False),
        ("float32", "float32", False),
    ],
)
def test_quantization_modes(mode, input_dtype, calibrated):
    model = build("conv1d")
    data = sample_inputs(model, 100)
    result = keras_tflite.convert(model, data, quantization=mode)
    assert result.quantization == mode
    assert result.inputs[0].dtype == input_dtype
    assert (result.num_calibration_samples > 0) == calibrated
    expected = keras_predict(model, data)[0]
    got = keras_tflite.TFLiteModel(result.tflite).predict(data["series"])
    assert normalized_mae(got, expected) < MAX_NORMALIZED_MAE


def test_unknown_quantization_mode_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"one of 'int8', 'int8_float_io'.*Received: quantization='int4'"
    ):
        keras_tflite.convert(build("mlp"), np.zeros((4, 8), np.float32), quantization="int4")


def test_calibrated_mode_without_data_is_refused():
    with pytest.raises(ValueError, match="Expected representative_data for quantization='int8'"):
        keras_tflite.convert(build("mlp"))


def test_fixed_batch_size_option():
    model = build("conv1d")
    data = sample_inputs(model, 64)
    result = keras_tflite.convert(model, data, batch_size=4)
    assert result.inputs[0].shape == (4, 24, 3)
    got = keras_tflite.TFLiteModel(result.tflite).predict(data["series"][:10])
    assert got.shape == (10, 1)


def test_gru_and_simple_rnn_convert_as_compact_loops_within_3x_the_fused_lstm():
    sizes = {}
    for name in ("lstm", "gru", "simple_rnn"):
        model = build(name)
        result = keras_tflite.convert(model, sample_inputs(model, 100))
        assert result.strategy == "keras_frozen", result.attempts
        sizes[name] = result.size
        if name != "lstm":
            assert "WHILE" in result.ops and len(result.ops) < 60
    assert sizes["gru"] <= 3 * sizes["lstm"]
    assert sizes["simple_rnn"] <= 3 * sizes["lstm"]


@keras.saving.register_keras_serializable(package="keras_tflite_tests")
class SubclassedForecaster(keras.Model):
    """A subclassed model: the worker rebuilds it by importing this module."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.lstm = keras.layers.LSTM(units)
        self.head = keras.layers.Dense(1)

    def call(self, x):
        return self.head(self.lstm(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_subclassed_keras3_model_converts_once_built():
    model = SubclassedForecaster()
    data = sample_inputs(build("lstm"), 100)["series"]
    expected = model(data[:16]).numpy()
    result = keras_tflite.convert(model, data)
    assert result.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1
    got = keras_tflite.MicroModel(result.tflite).predict(data[:16])
    assert normalized_mae(got, expected) < MAX_NORMALIZED_MAE
