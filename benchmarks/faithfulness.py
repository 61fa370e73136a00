"""Where healthy int8 models sit, and where an unfaithful one does: the evidence for the default
`max_normalized_rmse` gate.

Trains small models of the architectures people put on microcontrollers (on data shipped inside
packages), converts each with the default calibration and with a too-small one (the first 5
training samples, as `x[:5]` gives them), and
prints TFLite Micro's error against float on held-out samples: normalized RMSE (RMSE over the
float outputs' spread across samples), RMSE in steps of the int8 output (below ~1, int8 cannot do
better), the variance ratio (flat-line test) and the task loss int8 vs float.
Run: python benchmarks/faithfulness.py [--epochs N] [--short 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import seattle  # noqa: E402
from digits import digits  # noqa: E402

import keras_tflite  # noqa: E402
from keras_tflite.runtime.fidelity import fidelity  # noqa: E402

L = keras.layers
STEPS = 48  # two days of hourly readings: short enough to train several models quickly


def _series_model(body):
    inputs = keras.Input((STEPS, 3), name="series")
    return keras.Model(inputs, L.Dense(1, name="next_temp")(body(inputs)))


def forecasters():
    train, val, _ = seattle.windows(STEPS)
    bodies = {
        "LSTM(16)": lambda x: L.LSTM(16)(x),
        "GRU(16)": lambda x: L.GRU(16)(x),
        "BiLSTM(8)": lambda x: L.Bidirectional(L.LSTM(8))(x),
        "stacked LSTM(16,8)": lambda x: L.LSTM(8)(L.LSTM(16, return_sequences=True)(x)),
        "Conv1D+BN": lambda x: L.GlobalAveragePooling1D()(
            L.ReLU()(L.BatchNormalization()(L.Conv1D(16, 5, strides=2)(x)))
        ),
    }
    for name, body in bodies.items():
        yield name, _series_model(body), "mse", train, val, None
    season = keras.Input((2,), name="season")
    series = keras.Input((STEPS, 3), name="series")
    hidden = L.Concatenate()([L.LSTM(12)(series), L.Dense(4, activation="relu")(season)])
    two = keras.Model([series, season], L.Dense(1)(hidden))
    hours = [np.stack([x[:, -1, 1], x[:, -1, 2]], axis=1) for x in (train[0], val[0])]
    yield (
        "two-input LSTM",
        two,
        "mse",
        ({"series": train[0], "season": hours[0]}, train[1]),
        ({"series": val[0], "season": hours[1]}, val[1]),
        None,
    )


def classifiers():
    train, val = digits()
    inputs = keras.Input((8, 8, 1), name="image")
    h = L.MaxPooling2D()(L.Conv2D(8, 3, activation="relu")(inputs))
    yield (
        "digits CNN",
        keras.Model(inputs, L.Dense(10, activation="softmax")(L.Flatten()(h))),
        "sparse_categorical_crossentropy",
        train,
        val,
        None,
    )
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, (3000, 20)).astype(np.int32)
    labels = ((tokens == 7).sum(1) > (tokens == 3).sum(1)).astype(np.int32)
    for epochs in (None, 1):  # barely trained: probabilities within a few int8 steps of 0.5
        inputs = keras.Input((20,), dtype="int32", name="tokens")
        h = L.LSTM(16)(L.Embedding(50, 8)(inputs))
        yield (
            f"Embedding+LSTM classifier{', 1 epoch on 600' if epochs else ''}",
            keras.Model(inputs, L.Dense(2, activation="softmax")(h)),
            "sparse_categorical_crossentropy",
            (tokens[:600], labels[:600]) if epochs else (tokens[:2400], labels[:2400]),
            (tokens[2400:], labels[2400:]),
            epochs,
        )
    x = rng.uniform(0, 2 * np.pi, (3000, 1)).astype(np.float32)
    inputs = keras.Input((1,), name="x")
    h = L.Dense(16, activation="relu")(L.Dense(16, activation="relu")(inputs))
    yield (
        "hello_world sine MLP",
        keras.Model(inputs, L.Dense(1)(h)),
        "mse",
        (x[:2400], np.sin(x[:2400])),
        (x[2400:], np.sin(x[2400:])),
        None,
    )


def judge(model, loss_name, calibration, val, samples):
    result = keras_tflite.convert(model, calibration, num_calibration_samples=samples)
    x_val, y_val = val
    micro = keras_tflite.MicroModel(result.tflite).predict(x_val)
    expected = model.predict(x_val, verbose=0)
    metrics = fidelity([expected], [micro])
    metrics["rmse_steps"] = metrics["rmse"] / result.outputs[0].scale
    loss = keras.losses.get(loss_name)
    return (
        metrics,
        float(np.mean(loss(y_val, micro))),
        float(np.mean(loss(y_val, expected))),
    )


DEFAULT = keras_tflite.DEFAULT_NUM_SAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--short", type=int, default=5, help="the too-small calibration size")
    args = parser.parse_args()
    print(
        "| model | calibration | normalized RMSE | RMSE in output steps | variance ratio "
        "| int8 loss | float loss |\n|---|---|---|---|---|---|---|"
    )
    for name, model, loss, train, val, epochs in [*forecasters(), *classifiers()]:
        keras.utils.set_random_seed(0)
        model.compile(optimizer="adam", loss=loss)
        model.fit(*train, epochs=epochs or args.epochs, batch_size=64, verbose=0)
        val = (_take(val[0], 500), _take(val[1], 500))
        # The default draw, and what a user slicing `x[:5]` passes: the first few samples.
        for label, data, samples in (
            (f"{DEFAULT} drawn", train[0], DEFAULT),
            (f"first {args.short}", _take(train[0], args.short), args.short),
        ):
            metrics, int8_loss, float_loss = judge(model, loss, data, val, samples)
            print(
                f"| {name} | {label} | {metrics['normalized_rmse']:.4f} | "
                f"{metrics['rmse_steps']:.2f} | "
                f"{metrics['variance_ratio']:.3f} | {int8_loss:.4f} | {float_loss:.4f} |",
                flush=True,
            )


def _take(data, count):
    if isinstance(data, dict):
        return {k: v[:count] for k, v in data.items()}
    return data[:count]


if __name__ == "__main__":
    main()
