"""A TF1 training script the way most are written: graph mode turned on first, for the whole process.

Run by `test_session_graph_mode.py` in a process of its own (graph mode cannot be turned off again):
`python tf1_graph_mode.py STYLE FOLDER`, STYLE being `disable_eager_execution` or
`disable_v2_behavior`. A `dynamic_rnn` LSTMCell regression trains in a MonitoredTrainingSession with
`TFLiteExportHook(every_n_steps=...)` exporting in the background, calibrated on a graph-mode
`tf.data.Dataset`, saving checkpoints; then `convert_session` converts a plain session. Prints one
JSON line with what the test checks.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.nn.rnn_cell is Keras 2's (tf_keras)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
STEPS, FEATURES, UNITS = 16, 3, 8


def data():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (360, STEPS, FEATURES)), axis=1).astype(np.float32)
    y = np.tanh(x[:, -1, :1] - 0.5 * x[:, 0, 1:2]).astype(np.float32)
    return (x[:300], y[:300]), (x[300:], y[300:])


def build():
    series = tf1.placeholder(tf.float32, [None, STEPS, FEATURES], name="series")
    target = tf1.placeholder(tf.float32, [None, 1], name="target")
    outputs, _ = tf1.nn.dynamic_rnn(tf1.nn.rnn_cell.LSTMCell(UNITS), series, dtype=tf.float32)
    w = tf1.get_variable("out/kernel", [UNITS, 1])
    prediction = tf.identity(tf.matmul(outputs[:, -1, :], w), name="prediction")
    loss = tf.reduce_mean(tf.square(prediction - target))
    step = tf1.train.get_or_create_global_step()
    train_op = tf1.train.AdamOptimizer(1e-2).minimize(loss, global_step=step)
    return series, target, prediction, train_op


def main(style: str, folder: str) -> None:
    getattr(tf1, style)()
    import keras_tflite

    train, val = data()
    rng = np.random.default_rng(1)
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        series, target, prediction, train_op = build()
        calibration = tf.data.Dataset.from_tensor_slices(train).batch(32)  # a graph-mode dataset
        hook = keras_tflite.TFLiteExportHook(
            f"{folder}/exports", calibration, val, every_n_steps=40
        )
        stop = tf1.train.StopAtStepHook(last_step=120)
        with tf1.train.MonitoredTrainingSession(
            checkpoint_dir=f"{folder}/checkpoints", save_checkpoint_steps=60, hooks=[hook, stop]
        ) as session:
            while not session.should_stop():
                rows = rng.integers(0, len(train[0]), 32)
                session.run(train_op, {series: train[0][rows], target: train[1][rows]})
    with tf.Graph().as_default():
        series, target, prediction, train_op = build()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            expected = session.run(prediction, {series: val[0]})
            result = keras_tflite.convert_session(session, train[0], outputs=[prediction])
    micro = keras_tflite.MicroModel(result.tflite).predict(val[0])
    print(
        json.dumps(
            {
                "executing_eagerly": tf.executing_eagerly(),
                "convert_session_ops": result.ops,
                "convert_session_nmae": float(np.mean(np.abs(micro - expected)) / np.std(expected)),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
