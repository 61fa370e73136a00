"""The RNN bridge: Keras 3 layers traced, for conversion only, in forms that convert to int8.

- LSTM: Keras 3's carries no `api_implements` annotation, so the converter makes a WHILE loop
  whose int8 calibration crashes. tf_keras' implementation carries the one the converter
  recognises (`lstm_<uuid>`) and becomes one UNIDIRECTIONAL_SEQUENCE_LSTM op: we route Keras 3's
  LSTM through it, with the same weights.
- GRU and SimpleRNN: no fused op exists, Keras' loop crashes the calibrator, and unrolling costs
  ~280 KB of graph metadata. We trace a small `tf.while_loop` whose every loop variable changes
  each step (a loop-invariant input makes the int8 calibrator read a null tensor and segfault:
  measured with gdb), so it calibrates, and TFLite Micro runs its WHILE op.
- Embedding: one GATHER instead of Keras 3's negative-index SELECT, which TFLite Micro lacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from keras_tflite.specs import walk_layers

RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")


def recurrent_layers(model: Any) -> list[Any]:
    """Every recurrent layer in `model`, including those wrapped in Bidirectional."""
    found = []
    for layer in walk_layers(model):
        if type(layer).__name__ in RECURRENT_LAYERS:
            found.append(layer)
    return found


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
    standard = _named(activation) == "tanh" and _named(recurrent_activation) == "sigmoid"

    if mask is not None or unroll or bias is None or not standard:
        raise NotImplementedError  # Keras falls back to its generic loop.
    return fusable_lstm(
        inputs,
        (initial_state_h, initial_state_c),
        (_value(kernel), _value(recurrent_kernel), _value(bias)),
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        time_major=time_major,
    )


def fusable_lstm(inputs, states, weights, return_sequences, go_backwards=False, time_major=False):
    """tf_keras' LSTM that the converter fuses into one UNIDIRECTIONAL_SEQUENCE_LSTM op.

    Args:
        inputs: The sequence.
        states: The initial (h, c).
        weights: (kernel, recurrent_kernel, bias) in Keras' layout (gates i, f, c, o).
        return_sequences, go_backwards, time_major: As for a Keras LSTM.

    Returns:
        (last output, outputs, [h, c]). A function whose h or c is read is not fused.
    """
    from tf_keras.src.layers.rnn import lstm as tf_keras_lstm

    kernel, recurrent_kernel, bias = weights
    last, outputs, h, c, _ = tf_keras_lstm.lstm_with_backend_selection(
        inputs=inputs,
        init_h=states[0],
        init_c=states[1],
        kernel=kernel,
        recurrent_kernel=recurrent_kernel,
        bias=bias,
        mask=None,
        time_major=time_major,
        go_backwards=go_backwards,
        sequence_lengths=None,
        zero_output_for_mask=False,
        return_sequences=return_sequences,
    )
    return last, outputs, [h, c]


def scale_barrier(hidden: Any) -> Any:
    """An identity FULLY_CONNECTED after a fused LSTM, so its output keeps its own int8 scale.

    Without it the quantizer pushes a downstream CONCATENATION's scale (Bidirectional's merge, a
    second input) back into the fused op, whose kernel needs output and hidden state on one
    scale: measured normalized MAE 0.26 (Bidirectional) and 0.74 (LSTM + second input), against
    0.011 and 0.018 with it. Value-preserving ops that TFLite Micro runs (MINIMUM) share the
    scale and do not help; RELU_N1_TO_1 helps but TFLite Micro lacks it. Cost: units^2 bytes.
    """
    import tensorflow as tf

    units = hidden.shape[-1]
    flat = tf.reshape(hidden, [-1, units])
    return tf.reshape(tf.matmul(flat, tf.eye(units, dtype=hidden.dtype)), tf.shape(hidden))


def _named(function: Any) -> str | None:
    return getattr(function, "__name__", None)


def _value(variable: Any) -> Any:
    return variable.value if hasattr(variable, "value") else variable


def needs_scale_barrier(model: Any) -> bool:
    """Whether an LSTM output may meet a CONCATENATION: Bidirectional, Concatenate, or a
    subclassed model whose call we cannot see."""
    if type(model).__name__ not in ("Functional", "Sequential"):
        return True
    return any(
        type(layer).__name__ in ("Bidirectional", "Concatenate") for layer in walk_layers(model)
    )


def _fused_lstm_with_barrier(*args, **kwargs):
    last, outputs, states = _fused_lstm(*args, **kwargs)
    return scale_barrier(last), scale_barrier(outputs), states


@contextlib.contextmanager
def fused_lstm(barrier: bool) -> Iterator[None]:
    """Within this context, Keras 3 LSTM layers trace to the converter-fusable LSTM."""
    import keras.src.backend as backend

    original = backend.lstm
    backend.lstm = _fused_lstm_with_barrier if barrier else _fused_lstm
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


def _named_op(function: Any) -> Any:
    """A Keras activation as the TensorFlow op the converter maps to TANH / LOGISTIC."""
    import tensorflow as tf

    ops = {"tanh": tf.tanh, "sigmoid": tf.sigmoid, "relu": tf.nn.relu, "linear": tf.identity}
    return ops.get(_named(function), function)


def _rows(inputs: Any) -> Any:
    """[1, T, F] -> [T, F]; anything else takes Keras' own path."""
    import tensorflow as tf

    shape = inputs.shape
    if shape.rank != 3 or shape[0] != 1 or shape[1] is None:
        raise NotImplementedError  # Keras falls back to its generic loop.
    return tf.reshape(inputs, [shape[1], shape[2]])


def _time_loop(x_rows, h0, step, return_sequences: bool, seed_rows):
    """Runs `h = step(x_t, h)` over the rows of `x_rows` [T, F]; returns (last, outputs, [h]).

    Each step reads row 0 and rotates the rows; for sequences, a [T, U] buffer is shifted and
    the new state appended, so after T steps it holds h_1..h_T. `seed_rows` fills that buffer
    with values in the state's range (a zeros constant would be stored as float32).
    """
    import tensorflow as tf

    steps, units = x_rows.shape[0], h0.shape[-1]

    def body(t, h, rows, *buffer):
        h_new = step(rows[:1], h)
        rotated = tf.concat([rows[1:], rows[:1]], 0)
        if not return_sequences:
            return t + 1, h_new, rotated
        return t + 1, h_new, rotated, tf.concat([buffer[0][1:], h_new], 0)

    loop_vars = [tf.constant(0), h0, x_rows] + ([seed_rows] if return_sequences else [])
    result = tf.while_loop(lambda t, *_: t < steps, body, loop_vars, maximum_iterations=steps)
    last = result[1]
    outputs = tf.reshape(result[3] if return_sequences else last, [1, -1, units])
    return last, outputs, [last]


def _compact_gru(
    inputs,
    initial_state,
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
    reset_after=True,
):
    """Keras 3's `backend.gru` hook, answered with the compact loop (batch 1 only)."""
    import tensorflow as tf

    if mask is not None or time_major or unroll:
        raise NotImplementedError  # Keras falls back to its generic loop.
    x = _rows(inputs)
    x = tf.reverse(x, [0]) if go_backwards else x
    w, r = _value(kernel), _value(recurrent_kernel)
    units = r.shape[0]
    act, gate = _named_op(activation), _named_op(recurrent_activation)
    b = (
        _value(bias)
        if bias is not None
        else tf.zeros([2, 3 * units] if reset_after else [3 * units])
    )
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, None)

    def step(x_t, h):
        x_zr = tf.matmul(x_t, w[:, : 2 * units]) + b_in[: 2 * units]
        x_h = tf.matmul(x_t, w[:, 2 * units :]) + b_in[2 * units :]
        if reset_after:
            z, r_gate = tf.split(
                gate(x_zr + tf.matmul(h, r[:, : 2 * units]) + b_rec[: 2 * units]), 2, -1
            )
            candidate = act(x_h + r_gate * (tf.matmul(h, r[:, 2 * units :]) + b_rec[2 * units :]))
        else:
            z, r_gate = tf.split(gate(x_zr + tf.matmul(h, r[:, : 2 * units])), 2, -1)
            candidate = act(x_h + tf.matmul(r_gate * h, r[:, 2 * units :]))
        return candidate + z * (h - candidate)

    h0 = tf.reshape(
        initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state, [1, units]
    )
    seed = tf.tanh(tf.matmul(x, w[:, :units])) if return_sequences else None
    return _time_loop(x, h0, step, return_sequences, seed)


def _compact_simple_rnn_loop(original):
    """A replacement for SimpleRNN.inner_loop that takes the compact loop when it can."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        import tensorflow as tf

        cell = self.cell
        if mask is not None or self.unroll or sequences.shape[0] != 1:
            return original(self, sequences, initial_state, mask, training)
        x = _rows(sequences)
        x = tf.reverse(x, [0]) if self.go_backwards else x
        w, r = _value(cell.kernel), _value(cell.recurrent_kernel)
        b = _value(cell.bias) if cell.bias is not None else tf.zeros([r.shape[0]])
        act = _named_op(cell.activation) if cell.activation is not None else tf.identity
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        h0 = tf.reshape(h0, [1, r.shape[0]])
        seed = tf.tanh(tf.matmul(x, w)) if self.return_sequences else None
        step = lambda x_t, h: act(tf.matmul(x_t, w) + b + tf.matmul(h, r))  # noqa: E731
        return _time_loop(x, h0, step, self.return_sequences, seed)

    return inner_loop


@contextlib.contextmanager
def compact_loops() -> Iterator[None]:
    """Within this context, Keras 3 GRU and SimpleRNN (batch 1) trace to the compact loop."""
    import keras.src.backend as backend
    from keras.src.layers.rnn.simple_rnn import SimpleRNN

    original_gru, original_loop = backend.gru, SimpleRNN.__dict__.get("inner_loop")
    backend.gru = _compact_gru
    SimpleRNN.inner_loop = _compact_simple_rnn_loop(SimpleRNN.inner_loop)
    try:
        yield
    finally:
        backend.gru = original_gru
        if original_loop is None:
            del SimpleRNN.inner_loop
        else:
            SimpleRNN.inner_loop = original_loop


def _compact_tf_keras_rnn(original):
    """tf_keras' `backend.rnn`, answered with the rotating loop when the input is [1, T, F]."""

    def rnn(step_function, inputs, initial_states, **options):
        import tensorflow as tf

        shape = inputs.shape
        usable = (
            options.get("mask") is None
            and not options.get("constants")
            and not options.get("unroll")
            and not options.get("time_major")
            and shape.rank == 3
            and shape[0] == 1
            and shape[1] is not None
        )
        if not usable:
            return original(step_function, inputs, initial_states, **options)
        x = _rows(inputs)
        go_backwards = options.get("go_backwards", False)
        return_all_outputs = options.get("return_all_outputs", True)
        x = tf.reverse(x, [0]) if go_backwards else x
        steps, units = x.shape[0], initial_states[0].shape[-1]

        def body(t, rows, buffer, *states):
            output, new_states = step_function(rows[:1], list(states))
            rotated = tf.concat([rows[1:], rows[:1]], 0)
            return (t + 1, rotated, tf.concat([buffer[1:], output], 0), *new_states)

        # Zeros computed at run time: a constant [T, U] seed would be stored as float32.
        seed = x[:, :1] * tf.zeros([1, units], x.dtype)
        result = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            [tf.constant(0), x, seed, *initial_states],
            maximum_iterations=steps,
        )
        buffer, states = result[2], list(result[3:])
        last = buffer[-1:]
        outputs = tf.reshape(buffer if return_all_outputs else last, [1, -1, units])
        return last, outputs, states

    return rnn


@contextlib.contextmanager
def tf_keras_forms(barrier: bool) -> Iterator[None]:
    """tf_keras while tracing: GRU and SimpleRNN (batch 1) as the rotating loop, and the same
    scale barrier after each fused LSTM as for Keras 3 when `barrier`."""
    from tf_keras.src import backend
    from tf_keras.src.layers.rnn import lstm

    original_rnn, original_lstm = backend.rnn, lstm.lstm_with_backend_selection

    def lstm_with_barrier(**kwargs):
        last, outputs, h, c, runtime = original_lstm(**kwargs)
        if not barrier:
            return last, outputs, h, c, runtime
        return scale_barrier(last), scale_barrier(outputs), h, c, runtime

    backend.rnn = _compact_tf_keras_rnn(original_rnn)
    lstm.lstm_with_backend_selection = lstm_with_barrier
    try:
        yield
    finally:
        backend.rnn, lstm.lstm_with_backend_selection = original_rnn, original_lstm


@contextlib.contextmanager
def conversion_forms(barrier: bool) -> Iterator[None]:
    """Every bridge at once: fused LSTM, compact GRU/SimpleRNN loops, plain Embedding lookups."""
    with fused_lstm(barrier), compact_loops(), plain_take():
        yield
