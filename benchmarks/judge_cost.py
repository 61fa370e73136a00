"""What judging an export on more validation samples costs, and what a draw misses.

For the seed LSTM (120 x 3 Seattle windows, 1,728 validation samples) and the digits CNN: the time
the worker's judge spends per sample (the float model, LiteRT and TFLite Micro on the same inputs),
and how far the int8 model's validation loss on a random draw of N samples lies from its loss on
the whole set (the spread over 20 draws). The default `num_validation_samples` is chosen from this.

Run: python benchmarks/judge_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import _seed  # noqa: E402  (sets up the examples' path and quiet TensorFlow)
import keras  # noqa: E402
import numpy as np  # noqa: E402
from digits import digits  # noqa: E402

import keras_tflite  # noqa: E402

SIZES = (256, 512, 1024, 2048)


def digits_cnn():
    keras.utils.set_random_seed(0)
    train, val = digits()
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D()(h))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*train, epochs=5, verbose=0)
    return model, train, val, keras.losses.sparse_categorical_crossentropy


def seed_lstm():
    model, train, val, _ = _seed.trained_lstm(epochs=2)
    return model, train, val, keras.losses.mean_squared_error


def judge_seconds(model, tflite: bytes, x: np.ndarray) -> float:
    """The judge's work on `x`: float, LiteRT and TFLite Micro outputs."""
    began = time.perf_counter()
    model.predict(x, verbose=0, batch_size=256)
    keras_tflite.TFLiteModel(tflite).predict(x)
    keras_tflite.MicroModel(tflite).predict(x)
    return time.perf_counter() - began


def main() -> None:
    print("| model | validation set | ms per sample | " + " | ".join(f"{n} samples" for n in SIZES))
    print("|---|---|---|" + "---|" * len(SIZES))
    for name, make in (("seed LSTM(16)", seed_lstm), ("digits CNN", digits_cnn)):
        model, train, val, loss = make()
        tflite = keras_tflite.convert(model, train[0]).tflite
        x, y = val
        per_sample = judge_seconds(model, tflite, x[:256]) / 256
        micro = keras_tflite.MicroModel(tflite).predict(x)
        losses = np.asarray(loss(y, micro))
        whole = float(losses.mean())
        cells = []
        for n in SIZES:
            if n >= len(x):
                cells.append(f"{n * per_sample:.2f} s, the whole set")
                continue
            rng = np.random.default_rng(0)
            draws = [losses[rng.choice(len(x), n, replace=False)].mean() for _ in range(20)]
            spread = float(np.std(draws)) / whole
            cells.append(f"{n * per_sample:.2f} s, loss off by {spread:.1%} (1 sd)")
        print(f"| {name} | {len(x)} | {per_sample * 1e3:.2f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
