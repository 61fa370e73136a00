"""Forecast the next hour's temperature with a Keras 3 LSTM and ship it as full int8 TFLite.

Trains on vega_datasets' hourly Seattle temperatures (5-day windows), converts with
keras_tflite.convert, and measures the int8 model in LiteRT and in TFLite Micro.
Run: python examples/forecast_lstm.py [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import seattle  # noqa: E402

import keras_tflite  # noqa: E402


def build_model() -> keras.Model:
    inputs = keras.Input((seattle.STEPS, 3), name="series")
    hidden = keras.layers.LSTM(16)(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="next_temp")(hidden))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="exports")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_val, y_val), (_, std) = seattle.windows()
    model = build_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=64)

    result = keras_tflite.convert(model, (x_train, y_train))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = result.save(out / "forecast_lstm.tflite")

    float_pred = model.predict(x_val, verbose=0)
    lite_pred = keras_tflite.TFLiteModel(path).predict(x_val)
    micro = keras_tflite.MicroModel(path)
    micro_pred = micro.predict(x_val)
    degrees = lambda a, b: float(np.mean(np.abs(a - b)) * std)  # noqa: E731

    print(f"\nSaved {path} ({result.size} bytes, strategy {result.strategy}, ops {result.ops})")
    print(
        f"Forecast MAE vs truth, °F: float {degrees(float_pred, y_val):.2f}, "
        f"int8 LiteRT {degrees(lite_pred, y_val):.2f}, int8 TFLite Micro {degrees(micro_pred, y_val):.2f}"
    )
    print(
        f"int8 vs float MAE, °F: LiteRT {degrees(lite_pred, float_pred):.3f}, "
        f"TFLite Micro {degrees(micro_pred, float_pred):.3f}; TFLite Micro arena {micro.arena_bytes} bytes"
    )


if __name__ == "__main__":
    main()
