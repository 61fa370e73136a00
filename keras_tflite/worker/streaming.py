"""The streaming form of a recurrent model: one time step in, the output at that step and the
new recurrent state out; the caller keeps the state between calls.

The step is traced from the model's own layers: per-step layers before the first recurrent
layer run on the one sample, each LSTM/GRU/SimpleRNN layer runs its cell once, and the head runs
on the last recurrent output (the window model's output at that step). Calibration samples are
(sample, state) pairs met while stepping the float model through the representative sequences
from their first step, so the state's int8 ranges are those of real sequences, not of one step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_tflite.specs import TensorInfo, flat, framework_of, walk_layers

RECURRENT = {"LSTM": ("h", "c"), "GRU": ("h",), "SimpleRNN": ("h",)}
# Layers that act on each time step alone (or not at all at inference).
PER_STEP = {
    "Dense", "Activation", "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "LayerNormalization", "BatchNormalization", "ReLU", "LeakyReLU", "PReLU",
    "ELU", "Softmax", "Rescaling", "Normalization", "TimeDistributed", "Identity",
}  # fmt: skip
NEXT_SUFFIX = "_next"


class NotStreamable(ValueError):
    """The model has no streaming form (the message names the layer and why)."""


class StepModel:
    """The model's step function: (x_t, *states) -> (*outputs, *new states), any batch."""

    def __init__(self, model: Any, inputs: list[TensorInfo]):
        if len(inputs) != 1 or len(inputs[0].shape) != 2:
            shapes = [(i.name, i.shape) for i in inputs]
            raise NotStreamable(
                "Expected one input of shape (time, features) for streaming=True. Received "
                f"inputs {shapes}."
            )
        self.model, self.input = model, inputs[0]
        self.chain = _chain(model)
        self.states: list[TensorInfo] = [
            TensorInfo(f"{layer.name}_{part}", (int(layer.units),), "float32")
            for kind, layer in self.chain
            if kind == "recurrent"
            for part in RECURRENT[type(layer).__name__]
        ]
        self._function = None

    @property
    def step_inputs(self) -> list[TensorInfo]:
        return [TensorInfo(self.input.name, self.input.shape[1:], self.input.dtype), *self.states]

    def zeros(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, *s.shape), np.float32) for s in self.states]

    def __call__(self, x_t: Any, *states: Any) -> list[Any]:
        """TensorFlow ops of one step (call inside a tf.function)."""
        h, new, position = x_t, [], 0
        for kind, layer in self.chain:
            if kind == "recurrent":
                count = len(RECURRENT[type(layer).__name__])
                h, state = layer.cell(h, list(states[position : position + count]), training=False)
                new.extend(state if isinstance(state, (list, tuple)) else [state])
                position += count
            elif kind == "time_distributed":
                h = layer.layer(h, training=False)
            else:
                h = layer(h, training=False)
        return [*flat_tensors(h), *new]

    def function(self) -> Any:
        """The step as a tf.function of any batch (eager-speed stepping of many sequences)."""
        import tensorflow as tf

        if self._function is None:
            specs = [
                tf.TensorSpec((None, *i.shape), tf.as_dtype(i.dtype), name=i.name)
                for i in self.step_inputs
            ]
            self._function = tf.function(lambda *args: self(*args), input_signature=specs)
        return self._function

    def run(self, sequences: np.ndarray, keep_steps: bool = False):
        """Steps the float model through `sequences` [batch, time, features] from zero state.

        Returns:
            (final outputs, [(x_t, *states before the step) per step] when `keep_steps`).
        """
        function, states = self.function(), self.zeros(len(sequences))
        seen, outputs = [], []
        for t in range(sequences.shape[1]):
            x_t = sequences[:, t].astype(np.float32)
            if keep_steps:
                seen.append([x_t, *states])
            result = [np.asarray(r) for r in function(x_t, *states)]
            outputs, states = result[: len(result) - len(self.states)], result[-len(self.states) :]
        return outputs, seen


def flat_tensors(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _chain(model: Any) -> list[tuple[str, Any]]:
    """The model's layers in order, each classed "per_step", "time_distributed", "recurrent"
    or "head" (after a last recurrent layer that returns only its final output)."""
    layers = _linear_layers(model)
    for layer in layers:
        if type(layer).__name__ == "Bidirectional":
            raise NotStreamable(
                f"Expected recurrent layers that read time forwards only, for streaming=True. "
                f"Received Bidirectional layer {layer.name!r}: its backward half needs the "
                "whole sequence before the first output."
            )
    recurrent = [i for i, layer in enumerate(layers) if type(layer).__name__ in RECURRENT]
    if not recurrent:
        raise NotStreamable(
            "Expected an LSTM, GRU or SimpleRNN layer for streaming=True. Received a model "
            f"without one: {[type(layer).__name__ for layer in layers]}."
        )
    chain, over_time = [], True  # whether layers still see one sample per step
    for index, layer in enumerate(layers):
        kind = type(layer).__name__
        if kind in RECURRENT:
            _check_recurrent(layer, over_time, last=index == recurrent[-1])
            chain.append(("recurrent", layer))
            over_time = bool(layer.return_sequences)
        elif not over_time:
            chain.append(("head", layer))
        elif kind == "TimeDistributed":
            chain.append(("time_distributed", layer))
        elif kind in PER_STEP:
            chain.append(("per_step", layer))
        else:
            where = "before" if index < recurrent[-1] else "after"
            raise NotStreamable(
                f"Expected layers that act on each time step alone {where} the recurrent "
                f"layers, for streaming=True. Received {kind} layer {layer.name!r}, which mixes "
                "time steps (or is not known to act per step)."
            )
    return chain


def _check_recurrent(layer: Any, over_time: bool, last: bool) -> None:
    name = f"{type(layer).__name__} layer {layer.name!r}"
    if last and layer.return_sequences:
        raise NotStreamable(
            f"Expected the last recurrent layer to return only its final output "
            f"(return_sequences=False) for streaming=True. Received {name} with "
            "return_sequences=True: a model with an output at every step is not streamed yet."
        )
    if not over_time:
        raise NotStreamable(
            f"Expected every recurrent layer but the last to return sequences, for "
            f"streaming=True. Received {name} after one with return_sequences=False."
        )
    if getattr(layer, "go_backwards", False):
        raise NotStreamable(
            f"Expected recurrent layers that read time forwards for streaming=True. Received "
            f"{name} with go_backwards=True."
        )


def _linear_layers(model: Any) -> list[Any]:
    """The layers of a single chain (Sequential, or a Functional model of one path)."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    nested = [layer for layer in layers if layer is not model and hasattr(layer, "layers")]
    nested = [layer for layer in nested if type(layer).__name__ != "TimeDistributed"]
    if nested:
        raise NotStreamable(
            f"Expected a model of plain layers for streaming=True. Received nested "
            f"{type(nested[0]).__name__} {nested[0].name!r}: call it as its own model."
        )
    if type(model).__name__ == "Sequential":
        return layers
    previous = model.inputs[0] if len(model.inputs) == 1 else None
    for layer in layers:
        given = getattr(layer, "input", None)
        if previous is None or given is not previous or len(model.outputs) != 1:
            raise NotStreamable(
                "Expected a model that is one chain of layers (one input, one output, each "
                "layer reading the previous one's output, no operation between layers) for "
                f"streaming=True. Received {type(layer).__name__} layer {layer.name!r}, which "
                "reads something else."
            )
        previous = layer.output
    return layers


def calibration_steps(
    step: StepModel, sequences: np.ndarray, count: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """`count` (sample, state) pairs, batch 1, drawn from stepping through `sequences`."""
    _, seen = step.run(sequences, keep_steps=True)
    names = [i.name for i in step.step_inputs]
    stacked = [np.concatenate([s[k] for s in seen]) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(stacked[0]), size=min(count, len(stacked[0])), replace=False)
    return [{name: a[row : row + 1] for name, a in zip(names, stacked)} for row in rows]


def check_step(step: StepModel, model: Any, sequences: np.ndarray) -> float:
    """Largest difference between stepping and the model's window outputs (relative)."""
    stepped, _ = step.run(sequences)
    expected = flat(model(sequences, training=False))
    return max(
        float(np.max(np.abs(np.asarray(s) - e))) / (1.0 + float(np.max(np.abs(e))))
        for s, e in zip(stepped, expected)
    )


def frozen_step(step: StepModel) -> Any:
    """The batch-1 step as a concrete function with every weight a constant."""
    import tensorflow as tf

    specs = [
        tf.TensorSpec((1, *i.shape), tf.as_dtype(i.dtype), name=i.name) for i in step.step_inputs
    ]
    if framework_of(step.model) == "keras":
        import keras

        constants = [(v, tf.constant(np.asarray(v.numpy()))) for v in step.model.variables]

        def forward(*args):
            with keras.StatelessScope(state_mapping=constants):
                return step(*args)

        return tf.function(forward, autograph=False).get_concrete_function(*specs)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    traced = tf.function(lambda *args: step(*args), autograph=False)
    return convert_variables_to_constants_v2(traced.get_concrete_function(*specs))


def one_step_lstm_model(step: StepModel) -> Any | None:
    """The same Keras 3 layers on a window of one time step, when every recurrent layer is an
    LSTM the converter fuses and the last returns only its final output. Converted, the fused
    op keeps each LSTM's state in its own variable tensors between invokes (until the
    interpreter's Reset), at its int16 cell precision. None for any other model."""
    recurrent = [layer for kind, layer in step.chain if kind == "recurrent"]
    fusable = all(
        type(layer).__name__ == "LSTM"
        and layer.use_bias
        and not layer.unroll
        and not getattr(layer, "recurrent_dropout", 0)  # else Keras traces its generic loop
        and getattr(layer, "use_cudnn", "auto") is not False
        and getattr(layer.activation, "__name__", "") == "tanh"
        and getattr(layer.recurrent_activation, "__name__", "") == "sigmoid"
        for layer in recurrent
    )
    if framework_of(step.model) != "keras" or not fusable:
        return None
    import keras

    x = inputs = keras.Input((1, *step.input.shape[1:]), batch_size=1, name=step.input.name)
    for _, layer in step.chain:
        x = layer(x)
    return keras.Model(inputs, x)


def ordered_steps(sequences: np.ndarray) -> np.ndarray:
    """The sequences' time steps in order, one after another: [sequences x time, 1, features]."""
    return sequences.reshape(-1, 1, *sequences.shape[2:])


def state_pairs(step: StepModel) -> list[list[str]]:
    """[state input name, the output that is its next value] for each state."""
    return [[s.name, s.name + NEXT_SUFFIX] for s in step.states]


def recurrent_layer_names(model: Any) -> list[str]:
    return [layer.name for layer in walk_layers(model) if type(layer).__name__ in RECURRENT]
