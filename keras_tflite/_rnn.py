"""The RNN bridge: Keras 3 recurrent layers traced in forms the TFLite converter fuses.

Keras 3's LSTM carries no `api_implements` annotation, so the converter turns it into a WHILE
loop, whose int8 calibration crashes. tf_keras' LSTM implementation carries the annotation the
converter recognises (`lstm_<uuid>`), and then becomes one UNIDIRECTIONAL_SEQUENCE_LSTM op. While
tracing for conversion we route Keras 3's LSTM through it, with the same weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")


def recurrent_layers(model: Any) -> list[Any]:
    """Every recurrent layer in `model`, including those wrapped in Bidirectional."""
    found = []
    for layer in _walk(model):
        if type(layer).__name__ in RECURRENT_LAYERS:
            found.append(layer)
    return found


def _walk(layer: Any) -> Iterator[Any]:
    seen = set()
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        children = list(getattr(current, "layers", None) or [])
        for attr in ("forward_layer", "backward_layer", "layer"):
            child = getattr(current, attr, None)
            if child is not None and hasattr(child, "call"):
                children.append(child)
        stack.extend(children)


def _fused_lstm(
    inputs,
    initial_state_h,
    initial_state_c,
    mask,
    kernel,
    recurrent_kernel,
    bias,
    activation,
    recurrent_activation,
    return_sequences=False,
    go_backwards=False,
    unroll=False,
    time_major=False,
):
    """Keras 3's `backend.lstm` hook, answered by tf_keras' fusable implementation."""
    from tf_keras.src.layers.rnn import lstm as tf_keras_lstm

    standard = _named(activation) == "tanh" and _named(recurrent_activation) == "sigmoid"

    if mask is not None or unroll or bias is None or not standard:
        raise NotImplementedError  # Keras falls back to its generic loop.
    last, outputs, h, c, _ = tf_keras_lstm.lstm_with_backend_selection(
        inputs=inputs,
        init_h=initial_state_h,
        init_c=initial_state_c,
        kernel=_value(kernel),
        recurrent_kernel=_value(recurrent_kernel),
        bias=_value(bias),
        mask=None,
        time_major=time_major,
        go_backwards=go_backwards,
        sequence_lengths=None,
        zero_output_for_mask=False,
        return_sequences=return_sequences,
    )
    return last, outputs, [h, c]


def _named(function: Any) -> str | None:
    return getattr(function, "__name__", None)


def _value(variable: Any) -> Any:
    return variable.value if hasattr(variable, "value") else variable


@contextlib.contextmanager
def fused_lstm() -> Iterator[None]:
    """Within this context, Keras 3 LSTM layers trace to the converter-fusable LSTM."""
    import keras.src.backend as backend

    original = backend.lstm
    backend.lstm = _fused_lstm
    try:
        yield
    finally:
        backend.lstm = original


@contextlib.contextmanager
def unrolled(model: Any, kinds: tuple[str, ...] = ("GRU", "SimpleRNN")) -> Iterator[list[str]]:
    """Within this context, the model's recurrent layers of `kinds` run unrolled."""
    layers = [layer for layer in recurrent_layers(model) if type(layer).__name__ in kinds]
    previous = [layer.unroll for layer in layers]
    for layer in layers:
        layer.unroll = True
    try:
        yield [layer.name for layer in layers]
    finally:
        for layer, value in zip(layers, previous):
            layer.unroll = value


@contextlib.contextmanager
def plain_take() -> Iterator[None]:
    """Within this context, `ops.take` (Embedding lookups) traces to one GATHER.

    Keras 3 wraps the lookup in LESS/ADD/SELECT to allow negative ids; TFLite Micro has no SELECT
    kernel, so such a model does not load on a microcontroller (measured). Token ids are >= 0.
    """
    import keras.src.backend as backend
    import tensorflow as tf

    original = backend.numpy.take

    def take(x, indices, axis=None):
        if axis is None or not tf.is_tensor(indices) or not indices.dtype.is_integer:
            return original(x, indices, axis=axis)
        return tf.gather(tf.convert_to_tensor(x), indices, axis=axis)

    backend.numpy.take = take
    try:
        yield
    finally:
        backend.numpy.take = original
