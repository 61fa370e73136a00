"""Float vs post-training int8 vs quantization-aware int8, measured in TFLite Micro.

Trains a small tf_keras CNN on scikit-learn's 8x8 digits (shipped, no download) with
TFLiteExportCallback (post-training quantization: calibrated ranges), then fine-tunes it with
quantization-aware training (tensorflow-model-optimization) under the same callback (learned
ranges, no calibration), and prints the three validation accuracies side by side.
tfmot needs tf_keras: this script sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported.
Run: python examples/qat.py [--epochs N] [--qat-epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tfmot wraps tf_keras (Keras 2) layers only
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_keras  # noqa: E402
from digits import digits  # noqa: E402

from keras_tflite import TFLiteExportCallback, prepare_qat  # noqa: E402

L = tf_keras.layers


def build_model() -> tf_keras.Model:
    """Conv -> BatchNorm -> ReLU, the order tfmot folds (BatchNorm after an activation it cannot)."""
    inputs = tf_keras.Input((8, 8, 1), name="image")
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same")(inputs)))
    h = L.MaxPooling2D()(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    return tf_keras.Model(inputs, L.Dense(10, activation="softmax", name="digit")(h))


def compiled(model: tf_keras.Model, learning_rate: float) -> tf_keras.Model:
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def best_micro_accuracy(directory: Path) -> tuple[float, dict]:
    manifest = json.loads((directory / "best" / "manifest.json").read_text())
    return manifest["metrics"]["tflite_val_accuracy"], manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--qat-epochs", type=int, default=4)
    parser.add_argument("--out", default="exports_qat")
    args = parser.parse_args()
    out = Path(args.out)

    tf_keras.utils.set_random_seed(0)
    train, val = digits()
    # Every export is judged on TFLite Micro, the microcontroller's runtime: the best is kept by
    # its accuracy there.
    judged_on = {"num_validation_samples": len(val[0]), "monitor": "tflite_val_accuracy"}

    model = compiled(build_model(), 1e-2)
    ptq = TFLiteExportCallback(out / "ptq", train, val, **judged_on)
    model.fit(*train, validation_data=val, epochs=args.epochs, batch_size=32, callbacks=[ptq])
    float_accuracy = model.evaluate(*val, verbose=0)[1]
    ptq_accuracy, ptq_manifest = best_micro_accuracy(out / "ptq")

    # Quantization-aware fine-tuning from the float weights; its ranges are learned, so the
    # callback needs no representative data.
    aware = compiled(prepare_qat(model), 1e-3)
    qat = TFLiteExportCallback(out / "qat", validation_data=val, **judged_on)
    aware.fit(*train, validation_data=val, epochs=args.qat_epochs, batch_size=32, callbacks=[qat])
    qat_accuracy, qat_manifest = best_micro_accuracy(out / "qat")

    print(f"\nValidation accuracy on {len(val[0])} digits:")
    print(f"  {'float (tf_keras)':<36}{float_accuracy:.4f}")
    for name, accuracy, manifest in (
        ("int8 post-training, TFLite Micro", ptq_accuracy, ptq_manifest),
        ("int8 QAT, TFLite Micro", qat_accuracy, qat_manifest),
    ):
        print(
            f"  {name:<36}{accuracy:.4f}   {manifest['model_bytes']} bytes, "
            f"arena {int(manifest['metrics']['tflite_arena_bytes'])} bytes, "
            f"ranges {manifest['calibration']['ranges']}"
        )
    print(f"Deployable: {out / 'ptq' / 'best'}/ and {out / 'qat' / 'best'}/")


if __name__ == "__main__":
    main()
