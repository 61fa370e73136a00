"""Streaming models: one time step per call with the recurrent state carried between calls,
agreeing with the float window model in TFLite Micro and LiteRT."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_tflite
from keras_tflite import StreamingModel

L = keras.layers
STEPS, FEATURES = 30, 3


def _data():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (600, STEPS, FEATURES)), axis=1).astype(np.float32)
    y = (x[:, -1, :1] + 0.5 * x[:, -6, 1:2]).astype(np.float32)
    return x, y


def _model(kind: str):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="series")
    if kind == "stacked_lstm":  # a per-step layer before, two LSTMs, a head after
        h = L.Dense(8, activation="relu")(inputs)
        h = L.LSTM(8)(L.LSTM(16, return_sequences=True)(h))
    else:
        h = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind](16)(inputs)
    return keras.Model(inputs, L.Dense(1, name="next")(h))


@pytest.fixture(scope="module")
def streamed():
    x, y = _data()
    found = {}
    for kind in ("lstm", "stacked_lstm", "gru", "simple_rnn"):
        model = _model(kind)
        model.compile(optimizer="adam", loss="mse")
        model.fit(x[:500], y[:500], epochs=3, batch_size=32, verbose=0)
        found[kind] = (model, keras_tflite.convert(model, x[:500], streaming=True))
    return x[500:], found


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["micro", "litert"])
@pytest.mark.parametrize("kind", ["lstm", "stacked_lstm", "gru", "simple_rnn"])
def test_stepping_agrees_with_the_float_window_model(streamed, kind, runtime):
    sequences, found = streamed
    model, result = found[kind]
    assert result.strategy == "streaming" and "WHILE" not in result.ops
    assert [t.shape for t in result.inputs][0] == (1, FEATURES)  # one time step, batch 1
    stream = StreamingModel(result.tflite, runtime)
    window = model.predict(sequences, verbose=0)
    final = stream.predict(sequences)
    assert float(np.mean(np.abs(final - window)) / np.std(window)) <= 0.05


@pytest.mark.slow
def test_the_state_is_carried_between_calls_and_reset_restores_it(streamed):
    sequences, found = streamed
    _, result = found["lstm"]
    stream = StreamingModel(result.tflite)
    every = stream.predict(sequences[:4], all_steps=True)
    assert every.shape == (4, STEPS, 1)
    stream.reset()
    for t in range(STEPS):  # one sample per call, as a sensor loop does
        out = stream.step(sequences[0, t])
        assert out == pytest.approx(every[0, t])
    # Without a reset, the next sequence starts from the first one's final state.
    carried = stream.step(sequences[1, 0])
    assert abs(float(carried[0]) - float(every[1, 0, 0])) > 0.01
    stream.reset()
    fresh = [stream.step(sequences[1, t]) for t in range(STEPS)]
    assert np.array_equal(fresh[0], every[1, 0]) and np.array_equal(fresh[-1], every[1, -1])


@pytest.mark.slow
def test_the_state_tensors_are_named_and_paired(streamed):
    _, found = streamed
    _, result = found["stacked_lstm"]
    inputs = [t.name for t in result.inputs]
    outputs = [t.name for t in result.outputs]
    assert inputs[0] == "series" and outputs[0] == "next"
    states = inputs[1:]
    assert len(states) == 4 and all(s.endswith(("_h", "_c")) for s in states)
    assert outputs[1:] == [f"{s}_next" for s in states]


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda i: L.Bidirectional(L.LSTM(4))(i), "Bidirectional layer"),
        (lambda i: L.LSTM(4)(L.Conv1D(4, 3)(i)), "Conv1D layer"),
        (lambda i: L.Dense(1)(L.Flatten()(L.LSTM(4, return_sequences=True)(i))), "Flatten layer"),
        (lambda i: L.Dense(1)(L.Flatten()(i)), "Expected an LSTM, GRU or SimpleRNN layer"),
        (lambda i: L.LSTM(4)(L.RepeatVector(5)(L.LSTM(4)(i))), "after one with return_seq"),
        (lambda i: L.Dense(1)(L.LSTM(4)(i)[:, :2]), "no operation between layers"),
    ],
)
def test_models_without_a_streaming_form_are_refused_before_converting(build, message):
    inputs = keras.Input((STEPS, FEATURES), name="series")
    model = keras.Model(inputs, build(inputs))
    with pytest.raises(ValueError, match=message):
        keras_tflite.convert(model, np.zeros((4, STEPS, FEATURES), np.float32), streaming=True)


def test_a_model_with_two_inputs_is_refused():
    a, b = keras.Input((STEPS, FEATURES), name="a"), keras.Input((2,), name="b")
    model = keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.LSTM(4)(a), b])))
    with pytest.raises(ValueError, match=r"Expected one input of shape \(time, features\)"):
        keras_tflite.convert(model, {"a": np.zeros((4, STEPS, FEATURES)), "b": np.zeros((4, 2))},
                             streaming=True)  # fmt: skip


def test_streaming_model_refuses_a_window_model(tmp_path):
    inputs = keras.Input((4,), name="features")
    result = keras_tflite.convert(keras.Model(inputs, L.Dense(1)(inputs)), np.ones((8, 4)))
    with pytest.raises(ValueError, match="Expected a streaming model"):
        StreamingModel(result.tflite)
