"""Models made with tensorflow-model-optimization: quantization-aware training and pruning.

tfmot wraps tf_keras layers (it needs `TF_USE_LEGACY_KERAS=1`). A QAT model carries learned
quantization ranges, so it converts without calibration; a pruned model converts with its
pruning wrappers stripped, and its sparsity is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keras_tflite.specs import framework_of, walk_layers

QAT = "quantization_aware"
PRUNED = "pruned"
QAT_CLASSES = {"QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2", "QuantizeAnnotate"}
PRUNING_CLASSES = {"PruneLowMagnitude"}
QAT_MODES = ("int8", "int8_float_io")


def tfmot_layers(model: Any) -> Iterator[Any]:
    """The layers of `model` that tfmot made (its wrappers)."""
    for layer in walk_layers(model):
        if type(layer).__module__.startswith("tensorflow_model_optimization."):
            yield layer


def optimizations(model: Any) -> list[str]:
    """Which tfmot wrappers the model holds: [], [QAT], [PRUNED] or both."""
    names = {type(layer).__name__ for layer in tfmot_layers(model)}
    found = []
    if names & QAT_CLASSES:
        found.append(QAT)
    if names & PRUNING_CLASSES:
        found.append(PRUNED)
    return found


def check_mode(model: Any, quantization: str) -> None:
    if QAT in optimizations(model) and quantization not in QAT_MODES:
        raise ValueError(
            f"Expected quantization to be one of {QAT_MODES} for a quantization-aware trained "
            f"model (its learned ranges are int8). Received: quantization={quantization!r}."
        )


def prepare_qat(model: Any) -> Any:
    """Wraps a tf_keras model for quantization-aware training (tfmot's `quantize_model`).

    Train the result as usual and pass it to `TFLiteExportCallback`: it converts with the learned
    ranges, no calibration needed. tfmot works with tf_keras only: set `TF_USE_LEGACY_KERAS=1`
    before importing TensorFlow and build the model with `tf.keras` (or `tf_keras`).

    Args:
        model: A built Sequential or functional tf_keras model.

    Returns:
        The quantization-aware model (not compiled).

    Raises:
        ValueError: for a Keras 3 model, a subclassed model, or a layer tfmot cannot quantize,
            naming the layer, the layer before it and what to change.
    """
    framework = framework_of(model)
    if framework != "tf_keras":
        raise ValueError(
            "Expected a tf_keras model: tensorflow-model-optimization wraps tf_keras layers only. "
            "Set TF_USE_LEGACY_KERAS=1 before importing TensorFlow and build the model with "
            f"tf.keras (or tf_keras). Received: a Keras 3 model ({type(model).__qualname__})."
        )
    import tensorflow_model_optimization as tfmot

    try:
        return tfmot.quantization.keras.quantize_model(model)
    except RuntimeError as error:
        layer = _unsupported_layer(model, str(error))
        if layer is None:
            raise
        raise ValueError(_unsupported_message(model, layer)) from None


def _unsupported_layer(model: Any, message: str) -> Any:
    """The layer tfmot's 'Layer NAME:<class ...> is not supported' message names."""
    if "is not supported" not in message or not message.startswith("Layer "):
        return None
    name = message.removeprefix("Layer ").split(":", 1)[0]
    return next((layer for layer in model.layers if layer.name == name), None)


def _unsupported_message(model: Any, layer: Any) -> str:
    before = _inbound_names(model, layer)
    kind = type(layer).__name__
    where = f" after {', '.join(repr(b) for b in before)}" if before else ""
    advice = (
        "tfmot folds a BatchNormalization only directly after a Conv2D, DepthwiseConv2D or Dense: "
        "move it before the activation"
        if kind == "BatchNormalization"
        else "replace it with a layer tfmot supports"
    )
    return (
        f"Expected layers tensorflow-model-optimization can quantize. Received: layer "
        f"{layer.name!r} ({kind}){where}, which it cannot wrap. Fix: {advice}, or annotate the "
        "layers to train quantization-aware with tfmot.quantization.keras.quantize_annotate_layer "
        "and give this one a QuantizeConfig."
    )


def _inbound_names(model: Any, layer: Any) -> list[str]:
    names = []
    for node in getattr(layer, "_inbound_nodes", []):
        inbound = getattr(node, "inbound_layers", None) or []
        for source in inbound if isinstance(inbound, (list, tuple)) else [inbound]:
            names.append(source.name)
    if names:
        return [n for n in names if not n.startswith("input")]
    layers = list(model.layers)
    index = layers.index(layer)
    return [layers[index - 1].name] if index > 0 else []
