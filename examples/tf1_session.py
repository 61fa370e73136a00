"""Forecast the next hour's temperature the TF1 way, exporting int8 TFLite at every checkpoint.

Placeholders, a `tf.compat.v1.nn.dynamic_rnn` over an `LSTMCell(16)`, Adam's `minimize` and a
`MonitoredTrainingSession` with a checkpoint every 100 steps; `TFLiteExportHook` listens to the
checkpoint saver and keeps the best int8 model judged in TFLite Micro. The LSTM loop becomes one
fused UNIDIRECTIONAL_SEQUENCE_LSTM op (docs/tf1-sessions.md). Written the way most TF1 scripts are:
graph mode for the whole program (`disable_eager_execution()` first). TF1's cells need the Keras 2
that TensorFlow still ships (`TF_USE_LEGACY_KERAS=1`, set below before TensorFlow is imported).

Run: python examples/tf1_session.py [--steps 600] [--out exports_tf1]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.nn.rnn_cell is Keras 2's (tf_keras)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import seattle  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_tflite import TFLiteExportHook  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_eager_execution()  # TF1 style: graphs and sessions everywhere


def build_graph():
    """(series placeholder, target placeholder, train op), with a named `prediction`."""
    series = tf1.placeholder(tf.float32, [None, seattle.STEPS, 3], name="series")
    target = tf1.placeholder(tf.float32, [None, 1], name="target")
    cell = tf1.nn.rnn_cell.LSTMCell(16)
    outputs, _ = tf1.nn.dynamic_rnn(cell, series, dtype=tf.float32)
    w = tf1.get_variable("out/kernel", [16, 1], initializer=tf1.glorot_uniform_initializer(seed=0))
    b = tf1.get_variable("out/bias", [1], initializer=tf1.zeros_initializer())
    prediction = tf.identity(tf.matmul(outputs[:, -1, :], w) + b, name="prediction")
    loss = tf.reduce_mean(tf.square(prediction - target))
    step = tf1.train.get_or_create_global_step()
    train_op = tf1.train.AdamOptimizer(1e-2).minimize(loss, global_step=step)
    return series, target, train_op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="exports_tf1")
    args = parser.parse_args()

    train, val, (_, std) = seattle.windows()
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        series, target, train_op = build_graph()
        hook = TFLiteExportHook(args.out, train, val, target="nano33ble")  # + its listener
        saver = tf1.train.CheckpointSaverHook(
            f"{args.out}/checkpoints", save_steps=100, listeners=[hook.listener()]
        )
        stop = tf1.train.StopAtStepHook(last_step=args.steps)
        with tf1.train.MonitoredTrainingSession(hooks=[hook, saver, stop]) as session:
            while not session.should_stop():
                rows = rng.integers(0, len(train[0]), 64)
                session.run(train_op, {series: train[0][rows], target: train[1][rows]})

    exports = len((Path(args.out) / "history.jsonl").read_text().splitlines())
    seattle.report(Path(args.out) / "best", std, f"step {{step}}, of {exports} exports")


if __name__ == "__main__":
    main()
