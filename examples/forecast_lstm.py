"""Forecast the next hour's temperature with a Keras 3 LSTM, exporting full int8 TFLite as it trains.

Trains on vega_datasets' hourly Seattle temperatures (5-day windows) with TFLiteExportCallback in
`model.fit`: each epoch's model is converted, judged in LiteRT and TFLite Micro, and the best
deployable one (judged on TFLite Micro, the microcontroller's runtime) is kept in exports/best/
(model.tflite, model_data.h/.cc, model_ops.h, model.ino, manifest.json). `target="nano33ble"`
holds it to an Arduino Nano 33 BLE Sense's flash and RAM and estimates its time there.
Keras' TensorBoard callback writes the float curves; the export callback finds its log_dir and
writes the int8 curves beside them (run "validation_tflite").
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
import seattle  # noqa: E402

from keras_tflite import TFLiteExportCallback  # noqa: E402


def build_model() -> keras.Model:
    inputs = keras.Input((seattle.STEPS, 3), name="series")
    hidden = keras.layers.LSTM(16)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="next_temp")(hidden))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="exports")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    train, val, (_, std) = seattle.windows()
    model = build_model()
    export = TFLiteExportCallback(args.out, train, val, target="nano33ble")  # the one line
    # Float curves in the same charts; listed first, it keeps the tflite_* keys out of its "train" run.
    board = keras.callbacks.TensorBoard(str(Path(args.out) / "logs"))
    model.fit(
        *train, validation_data=val, epochs=args.epochs, batch_size=64, callbacks=[board, export]
    )

    best = Path(args.out) / "best"
    seattle.report(best, std, "epoch {epoch}")
    print(f"  C array for Arduino / TFLite Micro: {best / 'model_data.cc'}")
    print(f"  TensorBoard: tensorboard --logdir {Path(args.out) / 'logs'}")


if __name__ == "__main__":
    main()
