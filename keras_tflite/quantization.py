"""Quantization modes: how each one sets up a `tf.lite.TFLiteConverter`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

QUANTIZATION_MODES = ("int8", "int8_float_io", "int16x8", "float16", "dynamic", "float32")
CALIBRATED_MODES = ("int8", "int8_float_io", "int16x8")


def check_mode(quantization: Any) -> str:
    if quantization not in QUANTIZATION_MODES:
        raise ValueError(
            f"Expected quantization to be one of {', '.join(repr(m) for m in QUANTIZATION_MODES)}. "
            f"Received: quantization={quantization!r}."
        )
    return quantization


def calibrates(model: Any, quantization: str) -> bool:
    """Whether converting `model` calibrates int8 ranges on representative samples (a
    quantization-aware trained model brings learned ones)."""
    from keras_tflite import qat

    return quantization in CALIBRATED_MODES and qat.QAT not in qat.optimizations(model)


def configure(converter: Any, quantization: str, representative_dataset: Callable | None) -> None:
    """Sets the converter's optimizations, op sets and I/O types for `quantization`.

    `representative_dataset` is None for a model whose ranges were learned in training (QAT).
    """
    import tensorflow as tf

    if quantization == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return
    if quantization == "dynamic":
        return
    if quantization == "int16x8":
        converter.representative_dataset = representative_dataset
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [ops]
        converter.inference_input_type = converter.inference_output_type = tf.int16
        return
    if representative_dataset is not None:
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # else the learned ranges quantize it; naming the int8 op set would make the converter
    # demand a representative dataset before it looks for them (measured).
    if quantization == "int8":
        converter.inference_input_type = converter.inference_output_type = tf.int8
