"""The seed's case, shared by the benchmarks: a Keras 3 LSTM on hourly Seattle temperatures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import seattle  # noqa: E402


def trained_lstm(epochs: int = 3, unroll: bool = False):
    """Returns (model, (x_train, y_train), (x_val, y_val), degrees_per_unit)."""
    keras.utils.set_random_seed(0)
    train, val, (_, std) = seattle.windows()
    inputs = keras.Input((seattle.STEPS, 3), name="series")
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.LSTM(16, unroll=unroll)(inputs)))
    model.compile(optimizer="adam", loss="mse")
    model.fit(*train, epochs=epochs, batch_size=64, verbose=0)
    return model, train, val, std


def mae_degrees(a: np.ndarray, b: np.ndarray, std: float) -> float:
    return float(np.mean(np.abs(a - b)) * std)
