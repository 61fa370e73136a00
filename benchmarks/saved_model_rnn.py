"""Recurrent Keras 3 models converted by `keras-tflite convert` from `.keras` and from a SavedModel
(`model.export`): the ops, the bytes, TFLite Micro's error against the float model and the arena.

A SavedModel holds a TensorFlow graph, not Keras layers: its loops are recognised by value and
rebuilt as the `.keras` path builds them (the fused LSTM op, a compact GRU loop). Random walks of
24 steps x 3 features: 300 calibration and 200 validation samples.

Run: python benchmarks/saved_model_rnn.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_tflite.cli import main  # noqa: E402

STEPS, FEATURES = 24, 3


def models():
    layers = keras.layers
    yield "LSTM(16)", lambda x: layers.LSTM(16)(x)
    yield "GRU(16)", lambda x: layers.GRU(16)(x)
    yield "Bidirectional LSTM(8)", lambda x: layers.Bidirectional(layers.LSTM(8))(x)
    yield "stacked LSTM(8, 8)", lambda x: layers.LSTM(8)(layers.LSTM(8, return_sequences=True)(x))


def convert(source: Path, folder: Path) -> dict:
    """`keras-tflite convert --json`, its report (progress on stderr is dropped)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        data = ["--calibration", str(folder / "cal.npz"), "--validation", str(folder / "val.npz")]
        main(["convert", str(source), "-o", str(folder / f"out_{source.name}"), "--json", *data])
    return json.loads(printed.getvalue())


def main_() -> None:
    rng = np.random.default_rng(0)
    series = np.cumsum(rng.normal(0, 0.3, (500, STEPS, FEATURES)), axis=1).astype(np.float32)
    print("| model | saved as | ops | bytes | normalized RMSE in TFLite Micro | arena (bytes) |")
    print("|---|---|---|---|---|---|")
    for name, layer in models():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((STEPS, FEATURES), name="series")
        model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            np.savez(folder / "cal.npz", series=series[:300])
            np.savez(folder / "val.npz", series=series[300:])
            model.save(folder / "model.keras")
            model.export(str(folder / "saved"), verbose=False)
            for source in (folder / "model.keras", folder / "saved"):
                report = convert(source, folder)
                if not report.get("converted"):
                    print(f"| {name} | {source.name} | failed: {report.get('error')} | | | |")
                    continue
                kind = ".keras" if source.suffix else "SavedModel"
                ops = report["ops"]
                fused, loops = ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM"), ops.count("WHILE")
                shape = f"{fused} fused LSTM" if fused else f"{loops} WHILE"
                error = report["metrics"]["normalized_rmse_vs_float"]
                cells = [name, kind, f"{len(ops)} ({shape})", f"{report['model_bytes']:,}"]
                cells += [f"{error:.4f}", f"{report['tflite_micro']['arena_bytes']:,}"]
                print("| " + " | ".join(cells) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main_()
