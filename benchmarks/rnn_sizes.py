"""int8 size of GRU and SimpleRNN (compact loop) against the fused LSTM, same units and steps."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_tflite  # noqa: E402

STEPS, FEATURES = 40, 3


def size(kind: str, units: int, sequences: bool) -> tuple[int, str]:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="series")
    layer = getattr(keras.layers, kind)(units, return_sequences=sequences)
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    data = np.cumsum(np.random.default_rng(0).normal(0, 0.3, (200, STEPS, FEATURES)), axis=1)
    result = keras_tflite.convert(model, data.astype(np.float32))
    return result.size, result.strategy


def main() -> None:
    print("units  return_sequences   LSTM B     GRU B (x LSTM)   SimpleRNN B (x LSTM)")
    for units in (16, 24):
        for sequences in (False, True):
            lstm, _ = size("LSTM", units, sequences)
            gru, _ = size("GRU", units, sequences)
            rnn, _ = size("SimpleRNN", units, sequences)
            print(
                f"{units:>5}  {sequences!s:>16}  {lstm:>7}  {gru:>8} ({gru / lstm:.2f})"
                f"  {rnn:>9} ({rnn / lstm:.2f})"
            )


if __name__ == "__main__":
    main()
