"""TF1 recurrent graphs against the same layers in Keras: int8 size, ops and TFLite Micro's error.

A `tf.compat.v1.nn.dynamic_rnn` over an LSTMCell / GRUCell (what `tf.compat.v1.nn.rnn_cell` is
under TF_USE_LEGACY_KERAS=1), its last step into a Dense, converted from a live session with
`convert_session`; the Keras 3 model of the same units with `convert()`. The error is TFLite
Micro's normalized MAE against each float model (MAE over the float outputs' spread) on 200
held-out random-walk sequences.
Run: python benchmarks/tf1_rnn_sizes.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_keras.src.layers.rnn import legacy_cells  # noqa: E402

import keras_tflite  # noqa: E402
from keras_tflite import MicroModel  # noqa: E402

tf1 = tf.compat.v1
STEPS, FEATURES = 40, 3
DATA = np.cumsum(np.random.default_rng(0).normal(0, 0.3, (700, STEPS, FEATURES)), axis=1).astype(
    np.float32
)
TRAIN, HELD_OUT = DATA[:500], DATA[500:]


def _error(tflite: bytes, expected: np.ndarray) -> float:
    micro = MicroModel(tflite).predict(HELD_OUT)
    return float(np.mean(np.abs(micro - expected)) / np.std(expected))


def tf1_model(kind: str, units: int):
    """(result, error) of a TF1 dynamic_rnn graph with random weights."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        series = tf1.placeholder(tf.float32, [None, STEPS, FEATURES], name="series")
        cell = legacy_cells.LSTMCell(units) if kind == "LSTM" else legacy_cells.GRUCell(units)
        outputs, _ = tf1.nn.dynamic_rnn(cell, series, dtype=tf.float32)
        weights = tf1.get_variable("head/kernel", [units, 1])
        tf.identity(tf.matmul(outputs[:, -1, :], weights), name="prediction")
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            expected = session.run("prediction:0", {"series:0": HELD_OUT})
            result = keras_tflite.convert_session(session, TRAIN)
    return result, _error(result.tflite, expected)


def keras_model(kind: str, units: int):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="series")
    layer = getattr(keras.layers, kind)(units)
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    result = keras_tflite.convert(model, TRAIN)
    return result, _error(result.tflite, model.predict(HELD_OUT, verbose=0))


def main() -> None:
    print("| layer | units | TF1 graph B | Keras 3 B | TF1 / Keras | TF1 ops | nMAE TF1 | Keras |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("LSTM", "GRU"):
        for units in (16, 32):
            graph, graph_error = tf1_model(kind, units)
            same, same_error = keras_model(kind, units)
            ops = ", ".join(sorted(set(graph.ops)))
            print(
                f"| {kind} | {units} | {graph.size:,} | {same.size:,} | "
                f"{graph.size / same.size:.2f} | {ops} | {graph_error:.4f} | {same_error:.4f} |"
            )


if __name__ == "__main__":
    main()
