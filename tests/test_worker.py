"""A converter crash or hang is survived: real worker processes, real signals, real converter."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, sample_inputs

import keras_tflite

pytestmark = pytest.mark.slow  # real conversions and training


def test_converter_segfault_is_survived_and_next_strategy_converts(monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "keras_frozen:segfault")
    model = build("mlp")
    result = keras_tflite.convert(model, sample_inputs(model, 50))
    crashed = result.attempts[0]
    assert (crashed.strategy, crashed.status) == ("keras_frozen", "crashed")
    assert "SIGSEGV" in crashed.reason
    assert result.strategy == "keras_saved_model"


def test_converter_hang_is_killed_after_the_timeout(monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "keras_frozen:hang")
    model = build("mlp")
    result = keras_tflite.convert(model, sample_inputs(model, 50), timeout=5)
    hung = result.attempts[0]
    assert (hung.strategy, hung.status) == ("keras_frozen", "timed out")
    assert 5 <= hung.seconds < 60
    assert result.strategy == "keras_saved_model"


def test_real_converter_crash_raises_conversion_error_and_leaves_the_model_untouched():
    # Keras 3's own GRU loop segfaults the int8 calibrator (docs/known-limits.md): the real thing.
    model = build("gru")
    data = sample_inputs(model, 50)
    weights = [w.copy() for w in model.get_weights()]
    before = model.predict(data["series"][:4], verbose=0)
    with pytest.raises(
        keras_tflite.ConversionError, match="keras_saved_model: crashed.*SIGSEGV"
    ) as error:
        keras_tflite.convert(model, data, strategies=["keras_saved_model"])
    assert error.value.attempts[0].status == "crashed"
    for w, original in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, original)
    np.testing.assert_array_equal(model.predict(data["series"][:4], verbose=0), before)


def test_unknown_strategy_is_refused_before_any_work():
    with pytest.raises(
        ValueError, match=r"Expected strategies from \[.*\]. Received unknown: \['fastest'\]"
    ):
        keras_tflite.convert(build("mlp"), np.zeros((4, 8), np.float32), strategies=["fastest"])
