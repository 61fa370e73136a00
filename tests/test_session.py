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


def test_summaries_sit_beside_the_sessions_own_with_a_users_metric(tmp_path, data, capsys):
    from tensorboard.backend.event_processing import plugin_event_accumulator

    def within_half(y_true, y_pred):
        return np.abs(y_true - y_pred) < 0.5

    train, val = data
    graph, x, y, prediction, train_op = _graph()
    with graph.as_default():
        tf1.summary.scalar("train_loss", tf.reduce_mean(tf.square(prediction - y)))
        hook = TFLiteExportHook(
            tmp_path / "exports", train[0], val, every_n_steps=30, blocking=True,
            metrics=[within_half], monitor="tflite_val_within_half", mode="max",
        )  # fmt: skip
        with tf1.train.MonitoredTrainingSession(
            checkpoint_dir=str(tmp_path / "run"), save_summaries_steps=10, hooks=[hook]
        ) as session:
            for bx, by in _batches(train, 60):
                session.run(train_op, {x: bx, y: by})
    assert f"TensorBoard summaries in {tmp_path / 'run'}" in capsys.readouterr().out
    records = _history(tmp_path / "exports")
    micro = MicroModel((tmp_path / "exports" / "best" / "model.tflite").read_bytes())
    best = read_manifest(tmp_path / "exports" / "best")
    share = float(np.mean(within_half(val[1], micro.predict(val[0]))))
    assert best["monitor"] == "tflite_val_within_half" and best["value"] == pytest.approx(share)
    assert best["value"] == max(r["metrics"]["tflite_val_within_half"] for r in records)

    def tags(run):
        accumulator = plugin_event_accumulator.EventAccumulator(str(tmp_path / "run" / run))
        accumulator.Reload()
        return accumulator.Tags()

    assert "train_loss" in tags(".")["tensors"]  # the session's own, written by TF1
    assert {"epoch_loss", "epoch_within_half"} <= set(tags("validation_tflite")["tensors"])
    assert not (tmp_path / "exports" / "logs").exists()


def test_metrics_without_targets_or_as_lambdas_are_refused(tmp_path, data):
    train, _ = data
    with pytest.raises(ValueError, match="Received: a lambda"):
        TFLiteExportHook(tmp_path, train[0], metrics=[lambda t, p: t])
    with pytest.raises(ValueError, match="Received: 'mae'"):
        TFLiteExportHook(tmp_path, train[0], metrics="mae")
    graph, *_ = _graph()
    with graph.as_default():
        hook = TFLiteExportHook(tmp_path, train[0], metrics=["mse"])
        with pytest.raises(ValueError, match=r"to compute metrics=\['mse'\]. Received: 0 target"):
            hook.begin()


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
