"""TF1 recurrent graphs (`dynamic_rnn` over the TF1 LSTM and GRU cells, a graph-mode tf_keras LSTM
layer) converted from live sessions: one fused LSTM op or one compact GRU loop, right against the
float graph in TFLite Micro."""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

# What tf.compat.v1.nn.rnn_cell and tf.compat.v1.keras.layers.LSTM are with TF_USE_LEGACY_KERAS=1
# (this process runs Keras 3, where the former raises and the latter is Keras 3's).
from tf_keras.src.layers.rnn import gru_v1, legacy_cells, lstm_v1

import keras_tflite
from keras_tflite import MicroModel

pytestmark = pytest.mark.slow  # real training, conversions and runtimes

tf1 = tf.compat.v1
STEPS, FEATURES, UNITS = 12, 2, 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (700, STEPS, FEATURES)), axis=1).astype(np.float32)
    y = (x[:, -1, :1] + 0.5 * x[:, :, 1:].mean(axis=1)).astype(np.float32)
    return (x[:500], y[:500]), (x[500:], y[500:])


@contextlib.contextmanager
def _control_flow(version: int):
    """Graphs built with TF1's while loops (Enter/Exit) or TF2's (a While op)."""
    if version == 1:
        tf1.disable_control_flow_v2()
    try:
        yield
    finally:
        tf1.enable_control_flow_v2()


def _recurrent(kind: str, series):
    """The last hidden state of a TF1 recurrent layer of `kind` over `series`."""
    if kind == "keras_layer":
        return lstm_v1.LSTM(UNITS, recurrent_activation="sigmoid")(series)
    if kind == "keras_layer_default":  # hard_sigmoid gates: no fused op, a compact loop
        return lstm_v1.LSTM(UNITS)(series)
    if kind == "keras_gru_layer":
        return gru_v1.GRU(UNITS)(series)
    if kind == "basic_cell_state":  # forget_bias 0.5, the state tuple's h, joined to a feature
        cell = legacy_cells.BasicLSTMCell(UNITS, forget_bias=0.5)
        _, state = tf1.nn.dynamic_rnn(cell, series, dtype=tf.float32)
        return tf.concat([state.h, series[:, -1, :]], axis=1)
    if kind == "gru_cell":
        outputs, _ = tf1.nn.dynamic_rnn(legacy_cells.GRUCell(UNITS), series, dtype=tf.float32)
        return outputs[:, -1, :]
    if kind == "cell_state_c":
        _, state = tf1.nn.dynamic_rnn(legacy_cells.LSTMCell(UNITS), series, dtype=tf.float32)
        return tf.concat([state.h, state.c], axis=1)
    outputs, _ = tf1.nn.dynamic_rnn(legacy_cells.LSTMCell(UNITS), series, dtype=tf.float32)
    return outputs[:, -1, :]


def _trained_session(kind: str, train, steps: int = 150):
    """(session, graph's prediction on `train`'s first rows) after Adam on a TF1 LSTM graph."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        series = tf1.placeholder(tf.float32, [None, STEPS, FEATURES], name="series")
        target = tf1.placeholder(tf.float32, [None, 1], name="target")
        hidden = _recurrent(kind, series)
        weights = tf1.get_variable("head/kernel", [hidden.shape[-1], 1])
        prediction = tf.identity(tf.matmul(hidden, weights), name="prediction")
        loss = tf.reduce_mean(tf.square(prediction - target))
        train_op = tf1.train.AdamOptimizer(0.01).minimize(loss)
        session = tf1.Session(graph=graph)
        session.run(tf1.global_variables_initializer())
        rng = np.random.default_rng(0)
        for _ in range(steps):
            rows = rng.integers(0, len(train[0]), 32)
            session.run(train_op, {series: train[0][rows], target: train[1][rows]})
    return session


@pytest.mark.parametrize(
    "kind,control_flow",
    [
        ("cell", 2),
        ("cell", 1),
        ("basic_cell_state", 2),
        ("keras_layer", 2),
        ("keras_layer_default", 2),
        ("gru_cell", 1),
        ("keras_gru_layer", 2),
    ],
)
def test_a_tf1_recurrent_layer_converts_compactly_and_runs_right_in_tflite_micro(
    data, kind, control_flow
):
    train, val = data
    with _control_flow(control_flow):
        session = _trained_session(kind, train)
    with session, session.graph.as_default():
        expected = session.run("prediction:0", {"series:0": val[0]})
        result = keras_tflite.convert_session(session, train[0])
    fused = kind in ("cell", "basic_cell_state", "keras_layer")
    if fused:
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in result.ops and "WHILE" not in result.ops
    else:  # no fused op for a GRU or hard_sigmoid gates: one compact loop
        assert result.ops.count("WHILE") == 1
    micro = MicroModel(result.tflite).predict(val[0])
    assert float(np.mean(np.abs(micro - expected))) / float(np.std(expected)) <= 0.05
    # About the size of the same layer written in Keras 3 (never an unrolled graph).
    inputs = keras.Input((STEPS, FEATURES), name="series")
    layer = keras.layers.GRU(UNITS) if "gru" in kind else keras.layers.LSTM(UNITS)
    same = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    # A loop of LSTM ops measured 3.05x the fused op (16,144 B against 5,296 B).
    limit = 1.25 if fused or "gru" in kind else 3.5
    assert result.size < limit * keras_tflite.convert(same, train[0]).size


def test_a_loop_whose_cell_state_is_read_is_not_rebuilt_and_the_failure_says_why(data):
    train, _ = data
    session = _trained_session("cell_state_c", train, steps=1)
    with session, session.graph.as_default():
        with pytest.raises(Exception, match="reads its final cell state c"):
            keras_tflite.convert_session(session, train[0])


def test_the_cli_converts_a_tf1_lstm_checkpoint_to_the_fused_op(data, tmp_path, capsys):
    import json

    from keras_tflite.cli import main

    train, val = data
    session = _trained_session("cell", train, steps=50)
    with session, session.graph.as_default():
        prefix = tf1.train.Saver().save(session, str(tmp_path / "ckpt" / "model"))
        expected = session.run("prediction:0", {"series:0": val[0]})
    np.save(tmp_path / "cal.npy", train[0])
    code = main(["convert", prefix, "-o", str(tmp_path / "out"), "--outputs", "prediction",
                 "--calibration", str(tmp_path / "cal.npy"), "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report["ops"] and "WHILE" not in report["ops"]
    micro = MicroModel((tmp_path / "out" / "model.tflite").read_bytes()).predict(val[0])
    assert float(np.mean(np.abs(micro - expected))) / float(np.std(expected)) <= 0.05


# ---- the rewrite alone, on frozen graphs (no conversion) --------------------------------------


def _frozen(build, batch=None, control_flow=2):
    """A frozen graph: `build(series)` -> hidden, then a named prediction; random weights."""
    from keras_tflite.session.graph_io import freeze

    with _control_flow(control_flow):
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(0)
            series = tf1.placeholder(tf.float32, [batch, STEPS, FEATURES], name="series")
            hidden = build(series)
            weights = tf1.get_variable("head/kernel", [hidden.shape[-1], 1])
            tf.identity(tf.matmul(hidden, weights), name="prediction")
            with tf1.Session(graph=graph) as session:
                session.run(tf1.global_variables_initializer())
                graph_def = tf1.GraphDef()
                graph_def.ParseFromString(freeze(session, ["prediction"]))
    return graph_def


def _rebuilt(graph_def, samples=None):
    from keras_tflite.specs import TensorInfo
    from keras_tflite.worker.graph_rnn import rebuild_recurrent_loops

    series = TensorInfo("series", (STEPS, FEATURES), "float32")
    return rebuild_recurrent_loops(graph_def, [series], ["prediction"], samples)


def _loops_left(graph_def) -> list[str]:
    ops = ("While", "StatelessWhile", "Enter")
    return sorted({n.name for n in graph_def.node if n.op in ops and "keras_tflite" not in n.name})


def _stacked_gru(series):
    first, _ = tf1.nn.dynamic_rnn(legacy_cells.GRUCell(8), series, dtype=tf.float32, scope="a")
    second, _ = tf1.nn.dynamic_rnn(legacy_cells.GRUCell(8), first, dtype=tf.float32, scope="b")
    return second[:, -1, :]


@pytest.mark.parametrize(
    "build,batch",
    [
        (lambda s: _recurrent("cell", s), 1),  # a placeholder of fixed batch 1
        (_stacked_gru, None),  # a loop reading another loop's output
        (lambda s: lstm_v1.LSTM(8, recurrent_activation="sigmoid")(
            lstm_v1.LSTM(8, return_sequences=True, recurrent_activation="sigmoid")(s)), None),
    ],
    ids=["batch_1", "stacked_gru", "equal_width_keras_lstms"],
)  # fmt: skip
def test_the_rewrite_replaces_every_loop_and_keeps_the_outputs(build, batch):
    graph_def = _frozen(build, batch)
    rebuilt, notes = _rebuilt(graph_def)
    assert notes == [] and rebuilt is not graph_def
    assert _loops_left(rebuilt) == []


def test_a_loop_the_graph_still_depends_on_is_left_with_a_note():
    def state_as_dependency(series):
        outputs, state = tf1.nn.dynamic_rnn(legacy_cells.LSTMCell(8), series, dtype=tf.float32)
        with tf.control_dependencies([state.c]):
            return tf.identity(outputs[:, -1])

    graph_def = _frozen(state_as_dependency)
    rebuilt, notes = _rebuilt(graph_def)
    assert rebuilt is graph_def and notes == [
        "the loops ['rnn/'] stay loops: the graph still reads them"
    ]


def test_saturated_gates_are_told_apart_on_the_calibration_samples():
    """Inputs scaled inside the graph saturate the gates on random inputs, where sigmoid and
    hard_sigmoid look alike; the real samples (the calibration rows) tell them apart."""
    graph_def = _frozen(lambda s: lstm_v1.LSTM(8)(s / 0.0005))  # Keras 2's hard_sigmoid gates
    rows = np.random.default_rng(3).normal(0, 0.0005, (8, STEPS, FEATURES)).astype(np.float32)
    rebuilt, notes = _rebuilt(graph_def, {"series": rows})
    built = {n.op for n in rebuilt.node if n.name.startswith("keras_tflite_lstm")}
    assert notes == [] and "StatelessWhile" in built  # the compact loop of hard_sigmoid gates
    assert "PartitionedCall" not in built  # never the fused (sigmoid) LSTM
