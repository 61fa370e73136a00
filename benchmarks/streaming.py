"""The streaming form against the window model: fidelity, flash, arena, and the work per new sample.

The seed LSTM (120 hourly steps x 3 features) and a GRU and a stacked LSTM of the same data,
each converted twice: the window model (`convert()`) and the streaming model
(`convert(..., streaming=True)`). Fidelity: TFLite Micro's last-step output of the streaming
model, stepped through each held-out window, against the float window model (normalized MAE:
MAE over the float outputs' spread). Work: TFLite Micro's invoke time on this machine (the
fastest of three rounds of 20 invokes) for one window and for one step, measured in one run.
Run: python benchmarks/streaming.py [--epochs 3]
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
from _seed import mae_degrees, seattle

import keras_tflite
from keras_tflite import MicroModel, StreamingModel

L = keras.layers


def models() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(0)
    found = {}
    for name, body in (
        ("LSTM(16), the seed", lambda x: L.LSTM(16)(x)),
        ("GRU(16)", lambda x: L.GRU(16)(x)),
        ("LSTM(16) -> LSTM(8)", lambda x: L.LSTM(8)(L.LSTM(16, return_sequences=True)(x))),
    ):
        inputs = keras.Input((seattle.STEPS, 3), name="series")
        found[name] = keras.Model(inputs, L.Dense(1, name="next_temp")(body(inputs)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    train, val, (_, std) = seattle.windows()
    x_val = val[0][:200]
    print(
        "| model | window B | stream B | window arena | stream arena | stream nMAE vs float "
        "window (TFLite Micro) | °F | window / step invoke |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, model in models().items():
        model.compile(optimizer="adam", loss="mse")
        model.fit(*train, epochs=args.epochs, batch_size=64, verbose=0)
        expected = model.predict(x_val, verbose=0)
        window = MicroModel(keras_tflite.convert(model, train[0]).tflite)
        window.predict(x_val[:1])
        stream_result = keras_tflite.convert(model, train[0], streaming=True)
        stream = StreamingModel(stream_result.tflite)
        final = stream.predict(x_val)
        error = float(np.mean(np.abs(final - expected)) / np.std(expected))
        window_seconds = window.invoke_seconds()
        step_seconds = stream.runner.invoke_seconds()
        print(
            f"| {name} | {len(window.tflite):,} | {stream_result.size:,} | "
            f"{window.arena_bytes:,} | {stream.arena_bytes:,} | {error:.4f} | "
            f"{mae_degrees(final, expected, std):.3f} | "
            f"{window_seconds * 1e6:.0f} µs / {step_seconds * 1e6:.1f} µs = "
            f"{window_seconds / step_seconds:.0f}x |"
        )


if __name__ == "__main__":
    main()
