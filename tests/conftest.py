"""Tiny models of every architecture the engine promises, in Keras 3 and tf_keras."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

STEPS, FEATURES = 24, 3


def _layers(framework: str):
    if framework == "keras":
        import keras

        return keras, keras.layers
    import tf_keras

    return tf_keras, tf_keras.layers


def build(name: str, framework: str = "keras", seed: int = 0):
    """A small model of architecture `name`, with non-trivial random weights."""
    k, L = _layers(framework)
    k.utils.set_random_seed(seed)
    seq = k.Input((STEPS, FEATURES), name="series")
    if name == "mlp":
        x = k.Input((8,), name="features")
        return k.Model(x, L.Dense(1)(L.Dense(16, activation="relu")(x)))
    if name == "conv2d_bn":
        x = k.Input((12, 12, 1), name="image")
        h = L.Conv2D(4, 3)(x)
        h = L.ReLU()(L.BatchNormalization()(h))
        h = L.MaxPooling2D()(h)
        return k.Model(x, L.Dense(3, activation="softmax")(L.Flatten()(h)))
    if name == "depthwise":
        x = k.Input((12, 12, 3), name="image")
        h = L.DepthwiseConv2D(3, activation="relu")(x)
        h = L.Conv2D(4, 1, activation="relu")(h)
        return k.Model(x, L.Dense(2)(L.GlobalAveragePooling2D()(h)))
    if name == "conv1d":
        h = L.Conv1D(6, 3, activation="relu")(seq)
        return k.Model(seq, L.Dense(1)(L.GlobalAveragePooling1D()(h)))
    if name == "lstm":
        return k.Model(seq, L.Dense(1)(L.LSTM(8)(seq)))
    if name == "stacked_lstm":
        h = L.LSTM(8, return_sequences=True)(seq)
        return k.Model(seq, L.Dense(1)(L.LSTM(8)(h)))
    if name == "lstm_sequences":
        return k.Model(seq, L.Dense(1)(L.LSTM(8, return_sequences=True)(seq)))
    if name == "bidirectional_lstm":
        return k.Model(seq, L.Dense(1)(L.Bidirectional(L.LSTM(6))(seq)))
    if name == "conv_lstm":
        h = L.Conv1D(6, 3, activation="relu")(seq)
        return k.Model(seq, L.Dense(1)(L.LSTM(8)(h)))
    if name == "gru":
        return k.Model(seq, L.Dense(1)(L.GRU(8)(seq)))
    if name == "simple_rnn":
        return k.Model(seq, L.Dense(1)(L.SimpleRNN(8)(seq)))
    if name == "two_input":
        meta = k.Input((4,), name="meta")
        h = L.Concatenate()([L.LSTM(8)(seq), L.Dense(4, activation="relu")(meta)])
        return k.Model(
            [seq, meta],
            [L.Dense(1, name="level")(h), L.Dense(3, activation="softmax", name="kind")(h)],
        )
    if name == "embedding_lstm":
        tokens = k.Input((STEPS,), dtype="int32", name="tokens")
        # Embeddings of unit scale, so the untrained output spans more than a few int8 steps.
        embed = L.Embedding(40, 6, embeddings_initializer=k.initializers.RandomNormal(stddev=1.0))
        h = L.LSTM(8)(embed(tokens))
        return k.Model(tokens, L.Dense(1, activation="sigmoid")(h))
    raise KeyError(name)


def sample_inputs(model, count: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Random inputs keyed by the model's input names: smooth series, images, token ids."""
    rng = np.random.default_rng(seed)
    data = {}
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        shape = (count, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            data[name] = rng.integers(0, 40, shape).astype(np.int32)
        elif len(shape) == 3:  # a series: a random walk, as sensors give
            data[name] = np.cumsum(rng.normal(0, 0.3, shape), axis=1).astype(np.float32)
        else:
            data[name] = rng.normal(0, 1, shape).astype(np.float32)
    return data


def keras_predict(model, data: dict[str, np.ndarray]) -> list[np.ndarray]:
    inputs = [data[t.name.split(":")[0]] for t in model.inputs]
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.fixture
def lstm_model():
    return build("lstm")
