"""TF1 session training with TFLiteExportHook and convert_session: real graphs, real sessions,
the real converter and both runtimes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tensorflow as tf

import keras_tflite
from keras_tflite import MicroModel, TFLiteExportHook
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training

tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    y = (np.tanh(x[:, :1]) + 0.5 * x[:, 1:2]).astype(np.float32)
    return (x[:500], y[:500]), (x[500:], y[500:])


def _graph(extra_output: bool = False):
    """A TF1 regression graph: placeholders, variables, Adam, a named prediction."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 8], name="features")
        y = tf1.placeholder(tf.float32, [None, 1], name="target")
        w1 = tf1.get_variable("w1", [8, 16], initializer=tf1.glorot_uniform_initializer(seed=1))
        b1 = tf1.get_variable("b1", [16], initializer=tf1.zeros_initializer())
        w2 = tf1.get_variable("w2", [16, 1], initializer=tf1.glorot_uniform_initializer(seed=2))
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
        prediction = tf.identity(tf.matmul(hidden, w2), name="prediction")
        if extra_output:
            tf.identity(hidden, name="embedding")
        loss = tf.reduce_mean(tf.square(prediction - y))
        step = tf1.train.get_or_create_global_step()
        train = tf1.train.AdamOptimizer(0.01).minimize(loss, global_step=step)
    return graph, x, y, prediction, train


def _history(directory):
    return [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]


def _batches(train, steps):
    x, y = train
    for i in range(steps):
        rows = np.arange(i * 32, i * 32 + 32) % len(x)
        yield x[rows], y[rows]


def test_monitored_training_session_exports_at_each_checkpoint_and_keeps_the_best(tmp_path, data):
    train, val = data
    graph, x, y, prediction, train_op = _graph()
    with graph.as_default():
        hook = TFLiteExportHook(tmp_path / "exports", train[0], val, blocking=True, verbose=0)
        saver = tf1.train.CheckpointSaverHook(
            str(tmp_path / "ckpt"), save_steps=40, listeners=[hook.listener()]
        )
        with tf1.train.MonitoredTrainingSession(hooks=[hook, saver]) as session:
            for bx, by in _batches(train, 120):
                session.run(train_op, {x: bx, y: by})
    records = _history(tmp_path / "exports")
    assert [r["step"] for r in records] == [0, 40, 80, 120]  # each save: first, every 40, last
    assert all(r["exportable"] for r in records[1:]), records  # step 0 is untrained
    losses = [r["metrics"]["tflite_val_loss"] for r in records]
    assert losses[-1] < losses[0]  # training shows in the int8 model's loss
    manifest = read_manifest(tmp_path / "exports" / "best")
    assert manifest["value"] == pytest.approx(min(losses))
    assert manifest["inputs"][0]["name"] == "features" and manifest["outputs"][0]["dtype"] == "int8"
    assert manifest["monitor"] == "tflite_val_loss"
    tflite = (tmp_path / "exports" / "best" / "model.tflite").read_bytes()
    micro = MicroModel(tflite).predict(val[0])
    assert float(np.mean(np.abs(micro - val[1]))) == pytest.approx(
        manifest["metrics"]["tflite_val_mae"], rel=1e-4
    )


def test_a_plain_session_loop_exports_with_one_call_in_the_background(tmp_path, data, capsys):
    train, val = data
    graph, x, y, prediction, train_op = _graph()
    with graph.as_default():
        hook = TFLiteExportHook(tmp_path, train[0], val, outputs=prediction)
        hook.begin()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            for i, (bx, by) in enumerate(_batches(train, 60)):
                session.run(train_op, {x: bx, y: by})
                if i % 20 == 19:
                    hook.export(session)
            hook.end(session)
    records = _history(tmp_path)
    assert 1 <= len(records) <= 3 and records[-1]["step"] == 60
    assert read_manifest(tmp_path / "best") is not None
    assert re.search(
        r"Step 60: (\(steps? [\d, -]+ not exported\) )?int8 [\d.]+ KB", capsys.readouterr().out
    )


def test_convert_session_converts_a_live_session_with_its_outputs_found(data):
    train, val = data
    graph, x, y, prediction, train_op = _graph()
    with graph.as_default(), tf1.Session() as session:
        session.run(tf1.global_variables_initializer())
        for bx, by in _batches(train, 60):
            session.run(train_op, {x: bx, y: by})
        expected = session.run(prediction, {x: val[0]})
        result = keras_tflite.convert_session(session, train[0])
    assert result.strategy == "frozen_graph" and result.inputs[0].name == "features"
    micro = MicroModel(result.tflite).predict(val[0])
    assert float(np.mean(np.abs(micro - expected))) < 0.05 * float(np.std(expected))


def test_ambiguous_outputs_and_bad_data_are_refused_before_the_first_step(tmp_path, data):
    train, val = data
    graph, *_ = _graph(extra_output=True)
    with graph.as_default():
        hook = TFLiteExportHook(tmp_path, train[0], val)
        with pytest.raises(
            ValueError,
            match=r"2 candidate outputs.*'prediction'.*'embedding'|2 candidate outputs.*'embedding'.*'prediction'",
        ):
            hook.begin()
        hook = TFLiteExportHook(tmp_path, train[0], val, outputs=["predicton"])
        with pytest.raises(ValueError, match=r"Received unknown: \['predicton'\]"):
            hook.begin()
        hook = TFLiteExportHook(tmp_path, train[0][:, :5], val, outputs="prediction")
        with pytest.raises(ValueError, match="features"):
            with tf1.train.MonitoredTrainingSession(hooks=[hook]):
                pass
    assert not (tmp_path / "history.jsonl").exists()


def test_a_converter_crash_is_recorded_and_training_goes_on(tmp_path, data, monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "frozen_graph:segfault")
    train, val = data
    graph, x, y, prediction, train_op = _graph()
    with graph.as_default():
        hook = TFLiteExportHook(tmp_path, train[0], val, every_n_steps=20, blocking=True, verbose=0)
        with tf1.train.MonitoredTrainingSession(hooks=[hook]) as session:
            for bx, by in _batches(train, 40):
                session.run(train_op, {x: bx, y: by})
            final = session.run(tf1.train.get_global_step())
    records = _history(tmp_path)
    assert final == 40 and len(records) >= 2
    assert not any(r["exportable"] for r in records)
    assert all("SIGSEGV" in r["reason"] for r in records)
