"""Conversion strategies: each turns a loaded model into a configured `TFLiteConverter`.

Each runs only inside the conversion worker (`worker.main`), where a converter crash costs
nothing but the worker. Every strategy freezes a fixed-batch graph: a dynamic batch dimension is
what breaks recurrent conversions (`TensorListReserve ... element_shape to be static`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from keras_tflite.specs import TensorInfo, framework_of
from keras_tflite.worker import rnn


@dataclasses.dataclass(frozen=True)
class Strategy:
    name: str
    framework: str
    summary: str
    # Returns why the strategy does not apply to this model, or None when it does.
    skip_reason: Callable[[Any], str | None]
    # (model, inputs, batch_size, check, scratch) -> a configured-to-be TFLiteConverter; `check`
    # verifies the traced function against the model, `scratch` is a folder for files.
    build: Callable[..., Any]


def _no_reason(model: Any) -> None:
    return None


def _needs_gru_or_simple_rnn(model: Any) -> str | None:
    kinds = {type(layer).__name__ for layer in rnn.recurrent_layers(model)}
    if kinds & {"GRU", "SimpleRNN"}:
        return None
    return "the model has no GRU or SimpleRNN layer to unroll (LSTM is never unrolled)"


def _specs(inputs: list[TensorInfo], batch_size: int) -> list[Any]:
    import tensorflow as tf

    return [
        tf.TensorSpec((batch_size, *info.shape), tf.as_dtype(info.dtype), name=info.name)
        for info in inputs
    ]


def _call(model: Any, args: tuple) -> list[Any]:
    outputs = model(args[0] if len(args) == 1 else list(args), training=False)
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _frozen_keras_function(model: Any, inputs: list[TensorInfo], batch_size: int) -> Any:
    """A concrete function of the Keras 3 model with every variable read as a constant."""
    import keras
    import tensorflow as tf

    constants = [(v, tf.constant(np.asarray(v.numpy()))) for v in model.variables]

    def forward(*args):
        with keras.StatelessScope(state_mapping=constants):
            return _call(model, args)

    return tf.function(forward, autograph=False).get_concrete_function(*_specs(inputs, batch_size))


def build_keras_frozen(model, inputs, batch_size, check, scratch):
    import tensorflow as tf

    with rnn.conversion_forms(rnn.needs_scale_barrier(model)):
        function = _frozen_keras_function(model, inputs, batch_size)
    check(lambda *args: function(*args))
    # With a trackable object the converter takes its current path; without, a deprecated
    # one whose int8 calibration of the fused LSTM segfaults (measured).
    return tf.lite.TFLiteConverter.from_concrete_functions([function], model)


def build_keras_saved_model(model, inputs, batch_size, check, scratch):
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda *args: _call(model, args), input_signature=_specs(inputs, batch_size)
    )
    directory = str(scratch / "saved_model")  # the job's folder: removed with it
    archive.write_out(directory, verbose=False)
    loaded = tf.saved_model.load(directory)
    check(lambda *args: loaded.serve(*args))
    return tf.lite.TFLiteConverter.from_saved_model(directory, signature_keys=["serve"])


def build_tf_keras_concrete(model, inputs, batch_size, check, scratch):
    import tensorflow as tf

    with rnn.tf_keras_forms(rnn.needs_scale_barrier(model)):
        function = tf.function(lambda *args: _call(model, args)).get_concrete_function(
            *_specs(inputs, batch_size)
        )
    check(lambda *args: function(*args))
    return tf.lite.TFLiteConverter.from_concrete_functions([function], model)


def build_unrolled(model, inputs, batch_size, check, scratch):
    with rnn.unrolled(model):
        if framework_of(model) == "keras":
            return build_keras_frozen(model, inputs, batch_size, check, scratch)
        return build_tf_keras_concrete(model, inputs, batch_size, check, scratch)


def build_graph(model, inputs, batch_size, check, scratch):
    return model.converter(batch_size, scratch)


STREAMING = "streaming"  # asked for by name only: a different model (one step, with state)

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "keras_frozen",
            "keras",
            "Keras 3 traced with weights as constants; LSTM routed to the fusable tf_keras kernel",
            _no_reason,
            build_keras_frozen,
        ),
        Strategy(
            "keras_saved_model",
            "keras",
            "Keras 3 ExportArchive SavedModel with a fixed-batch signature",
            _no_reason,
            build_keras_saved_model,
        ),
        Strategy(
            "tf_keras_concrete",
            "tf_keras",
            "tf_keras fixed-batch concrete function",
            _no_reason,
            build_tf_keras_concrete,
        ),
        Strategy(
            "frozen_graph",
            "graph",
            "a frozen TensorFlow graph (SavedModel, TF1 checkpoint, .pb) via the TF1 converter",
            _no_reason,
            build_graph,
        ),
        Strategy(
            STREAMING,
            "any",
            "one time step in, the output and the next recurrent state out (streaming=True)",
            _no_reason,
            None,  # built by worker.conversion, which also steps the calibration sequences
        ),
        Strategy(
            "unrolled",
            "any",
            "GRU and SimpleRNN layers unrolled into per-step ops",
            _needs_gru_or_simple_rnn,
            build_unrolled,
        ),
    )
}


def plan(framework: str, requested: list[str] | None) -> list[str]:
    """The strategies to try, in order, for a model of `framework`."""
    names = requested or [n for n in STRATEGIES if n != STREAMING]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise ValueError(
            f"Expected strategies from {list(STRATEGIES)}. Received unknown: {unknown}."
        )
    return names


def framework_skip_reason(strategy: Strategy, framework: str) -> str | None:
    if strategy.framework in ("any", framework):
        return None
    return f"applies to {strategy.framework} models; this is a {framework} model"


@contextlib.contextmanager
def quiet_tensorflow():
    """Keeps TensorFlow's Python-side warnings out of the worker log's last lines."""
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
