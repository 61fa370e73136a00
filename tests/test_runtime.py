"""TFLiteModel and MicroModel: any batch size, inputs by name, recurrent state reset per sample."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, sample_inputs

import keras_tflite

pytestmark = pytest.mark.slow  # real conversions and training


@pytest.fixture(scope="module")
def sequences_model():
    model = build("lstm_sequences")
    data = sample_inputs(model, 100)
    return keras_tflite.convert(model, data), data["series"]


@pytest.mark.parametrize("runner", [keras_tflite.TFLiteModel, keras_tflite.MicroModel])
def test_each_sample_is_independent_of_the_one_before(sequences_model, runner):
    result, x = sequences_model
    model = runner(result.tflite)
    alone = model.predict(x[5:6])
    after_others = model.predict(x[:6])[5:6]
    np.testing.assert_array_equal(alone, after_others)


@pytest.mark.parametrize("runner", [keras_tflite.TFLiteModel, keras_tflite.MicroModel])
def test_any_batch_size_on_a_fixed_batch_model(sequences_model, runner):
    result, x = sequences_model
    assert runner(result.tflite).predict(x[:7]).shape == (7, 24, 1)


def test_runtime_exposes_details_and_ops(sequences_model, tmp_path):
    result, _ = sequences_model
    path = result.save(tmp_path / "m.tflite")
    model = keras_tflite.TFLiteModel(path)
    assert model.inputs[0].name == "series" and model.inputs[0].dtype == "int8"
    assert model.ops == result.ops and "UNIDIRECTIONAL_SEQUENCE_LSTM" in model.ops


def test_micro_reports_its_arena(sequences_model):
    result, x = sequences_model
    micro = keras_tflite.MicroModel(result.tflite)
    micro.predict(x[:1])
    assert 1000 < micro.arena_bytes < micro.arena_size


def test_wrong_input_shape_is_a_clear_error(sequences_model):
    result, _ = sequences_model
    with pytest.raises(
        ValueError,
        match=r"input 'series' with per-sample shape \(24, 3\). Received: an array of shape \(2, 3, 3\)",
    ):
        keras_tflite.TFLiteModel(result.tflite).predict(np.zeros((2, 3, 3), np.float32))
