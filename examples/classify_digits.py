"""Classify 8x8 handwritten digits with a small Keras 3 CNN, exporting full int8 TFLite as it trains.

scikit-learn ships the digits (no download). The callback keeps the export with the best int8
validation accuracy, measured in LiteRT, with TFLite Micro checked on every export.
Run: python examples/classify_digits.py [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from digits import digits  # noqa: E402

from keras_tflite import TFLiteExportCallback  # noqa: E402


def build_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="digit")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default="exports_digits")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    train, val = digits()
    model = build_model()
    export = TFLiteExportCallback(
        args.out, train, val, monitor="tflite_val_accuracy", num_validation_samples=len(val[0])
    )
    model.fit(*train, validation_data=val, epochs=args.epochs, batch_size=32, callbacks=[export])

    manifest = json.loads((Path(args.out) / "best" / "manifest.json").read_text())
    metrics = manifest["metrics"]
    print(
        f"\nDeployable model: {Path(args.out) / 'best'}/ (epoch {manifest['epoch']}), "
        f"{manifest['model_bytes']} bytes, arena {int(metrics['tflite_arena_bytes'])} bytes"
    )
    print(
        f"  int8 accuracy {metrics['tflite_val_accuracy']:.3f} in TFLite Micro; top-1 agreement "
        f"with float {metrics['tflite_top1_agreement_vs_float']:.3f} (TFLite Micro), "
        f"{metrics['tflite_litert_top1_agreement_vs_float']:.3f} (LiteRT)"
    )


if __name__ == "__main__":
    main()
