"""Keras' LSTM and GRU as numbers: the layouts a frozen graph may hold their weights in, their
float64 references (what a loop must compute to be one), and one step in TensorFlow ops (the
compact loop's). `graph_rnn` recognises loops with them."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def layouts(weights: list[np.ndarray], features: int, forget_biases: list[float]):
    """Candidate (kind, kernel, recurrent, bias) in Keras' layout that these weights may be."""
    matrices = sorted((w for w in weights if w.ndim == 2), key=lambda w: -w.shape[1])
    vectors = sorted((w for w in weights if w.ndim == 1), key=lambda w: -w.size)
    if len(vectors) == 1 and len(matrices) in (1, 2) and vectors[0].size % 4 == 0:
        yield from _lstm_layouts(matrices, vectors[0], features, forget_biases)
    if len(vectors) == 1 and len(matrices) == 2 and vectors[0].size % 3 == 0:
        yield from _keras_gru_layouts(matrices, vectors[0], features)
    if len(vectors) == 2 and len(matrices) == 2:
        yield from _gru_layouts(matrices, vectors, features)
    if not vectors and len(matrices) == 3:
        yield from _reset_after_gru_layouts(matrices, features)


def _lstm_layouts(matrices, bias, features: int, forget_biases: list[float]):
    units = bias.size // 4
    if len(matrices) == 1 and matrices[0].shape == (features + units, 4 * units):
        # A TF1 cell: one [x, h] kernel, gates i, j (the candidate), f, o; forget_bias added.
        i, j, f, o = np.split(matrices[0], 4, axis=1)
        bi, bj, bf, bo = np.split(bias, 4)
        kernel = np.concatenate([i, f, j, o], axis=1)
        for forget in forget_biases:
            yield (
                "lstm",
                kernel[:features],
                kernel[features:],
                np.concatenate([bi, bf + forget, bj, bo]),
            )
    if len(matrices) == 2:  # a Keras layer: kernel [features, 4u], recurrent [u, 4u]; i, f, c, o
        for kernel, recurrent in (matrices, matrices[::-1]):  # equal widths: the values decide
            if kernel.shape == (features, 4 * units) and recurrent.shape == (units, 4 * units):
                yield "lstm", kernel, recurrent, bias


def _gru_layouts(matrices, vectors, features: int):
    """TF1's GRUCell: gates [x, h] -> (r, u), candidate [x, r * h] -> c; h = u h + (1 - u) c.
    That is Keras' GRU with reset_after=False, its z being TF1's u."""
    (gates, candidate), (gate_bias, candidate_bias) = matrices, vectors
    units = candidate.shape[1]
    if gates.shape != (features + units, 2 * units) or candidate.shape[0] != features + units:
        return
    r, u = np.split(gates, 2, axis=1)
    kernel = np.concatenate([u, r, candidate], axis=1)
    br, bu = np.split(gate_bias, 2)
    yield "gru", kernel[:features], kernel[features:], np.concatenate([bu, br, candidate_bias])


def _keras_gru_layouts(matrices, bias, features: int):
    """A Keras 2 GRU layer (reset_after=False, the v1 layer's default): z, r, h already."""
    units = bias.size // 3
    for kernel, recurrent in (matrices, matrices[::-1]):  # equal widths: the values decide
        if kernel.shape == (features, 3 * units) and recurrent.shape == (units, 3 * units):
            yield "gru", kernel, recurrent, bias


def _reset_after_gru_layouts(matrices, features: int):
    """A Keras GRU with reset_after=True (Keras 3's default): kernel [features, 3u], recurrent
    [u, 3u] and a [2, 3u] bias (input, recurrent); gates z, r, h."""
    for kernel, recurrent, bias in itertools.permutations(matrices):
        units = recurrent.shape[0]
        expected = ((features, 3 * units), (units, 3 * units), (2, 3 * units))
        if (kernel.shape, recurrent.shape, bias.shape) == expected:
            yield "gru", kernel, recurrent, bias


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def _hard_sigmoid(v: np.ndarray) -> np.ndarray:
    return np.clip(v * 0.2 + 0.5, 0.0, 1.0)  # Keras 2's


GATES = {"sigmoid": _sigmoid, "hard_sigmoid": _hard_sigmoid}


def _reference_lstm(x, kernel, recurrent, bias, gate) -> dict[str, np.ndarray]:
    """Keras' LSTM (tanh) in float64 numpy: the sequence, and the final h, c."""
    x = x.astype(np.float64)
    batch, units = x.shape[0], recurrent.shape[0]
    h, c, sequence = np.zeros((batch, units)), np.zeros((batch, units)), []
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
        c = gate(f) * c + gate(i) * np.tanh(g)
        h = gate(o) * np.tanh(c)
        sequence.append(h)
    return {"sequence": np.stack(sequence, axis=1), "h": h, "c": c}


def _reference_gru(x, kernel, recurrent, bias, gate) -> dict[str, np.ndarray]:
    """Keras' GRU (tanh; reset_after when the bias has two rows) in float64 numpy."""
    x = x.astype(np.float64)
    units = recurrent.shape[0]
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias.ndim == 2 else (bias, None)
    h, sequence = np.zeros((x.shape[0], units)), []
    for t in range(x.shape[1]):
        inputs = x[:, t] @ kernel + input_bias
        if recurrent_bias is None:  # the reset gate applies before the recurrent kernel
            z, r = np.split(gate(inputs[:, : 2 * units] + h @ recurrent[:, : 2 * units]), 2, 1)
            candidate = np.tanh(inputs[:, 2 * units :] + (r * h) @ recurrent[:, 2 * units :])
        else:
            inner = h @ recurrent + recurrent_bias
            z, r = np.split(gate(inputs[:, : 2 * units] + inner[:, : 2 * units]), 2, 1)
            candidate = np.tanh(inputs[:, 2 * units :] + r * inner[:, 2 * units :])
        h = z * h + (1 - z) * candidate
        sequence.append(h)
    return {"sequence": np.stack(sequence, axis=1), "h": h}


REFERENCES = {"lstm": _reference_lstm, "gru": _reference_gru}


class Cell:
    """One step of the layer in TensorFlow ops: (x_t, states) -> states, h first. `layer` is
    a `graph_rnn` layer: its kind, gate, kernel, recurrent kernel and bias."""

    def __init__(self, layer: Any):
        import tensorflow as tf

        self.layer, self.units = layer, layer.recurrent.shape[0]
        self.kernel, self.recurrent = tf.constant(layer.kernel), tf.constant(layer.recurrent)
        self.reset_after = layer.bias.ndim == 2  # a GRU's [input; recurrent] bias
        self.bias = tf.constant(layer.bias[0] if self.reset_after else layer.bias)
        self.recurrent_bias = tf.constant(layer.bias[1]) if self.reset_after else None
        hard = lambda v: tf.clip_by_value(v * 0.2 + 0.5, 0.0, 1.0)  # noqa: E731
        self.gate = tf.sigmoid if layer.gate == "sigmoid" else hard

    def __call__(self, x_t, states):
        import tensorflow as tf

        units, gate = self.units, self.gate
        inputs = tf.matmul(x_t, self.kernel) + self.bias
        if self.layer.kind == "lstm":
            h, c = states
            i, f, g, o = tf.split(inputs + tf.matmul(h, self.recurrent), 4, axis=-1)
            c = gate(f) * c + gate(i) * tf.tanh(g)
            return gate(o) * tf.tanh(c), c
        (h,) = states
        if self.reset_after:
            inner = tf.matmul(h, self.recurrent) + self.recurrent_bias
            z, r = tf.split(gate(inputs[:, : 2 * units] + inner[:, : 2 * units]), 2, axis=-1)
            candidate = tf.tanh(inputs[:, 2 * units :] + r * inner[:, 2 * units :])
            return (candidate + z * (h - candidate),)
        zr = gate(inputs[:, : 2 * units] + tf.matmul(h, self.recurrent[:, : 2 * units]))
        z, r = tf.split(zr, 2, axis=-1)
        candidate = tf.tanh(
            inputs[:, 2 * units :] + tf.matmul(r * h, self.recurrent[:, 2 * units :])
        )
        return (candidate + z * (h - candidate),)
