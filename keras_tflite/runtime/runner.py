"""What running a .tflite model on float data means in any runtime: inputs matched by name or
in the model's order, any batch size, quantize -> invoke -> dequantize."""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.runtime.flatbuffer import model_io
from keras_tflite.runtime.inspect import io_details, op_names


def _read(model: bytes | str | os.PathLike) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return Path(model).read_bytes()


class QuantizedRunner(abc.ABC):
    """What LiteRT and TFLite Micro runs share: input matching, batching, (de)quantization.

    Each invoke starts from the model's initial state (variable tensors, such as a fused LSTM's
    state, are reset) unless `keeps_state`: a streaming model's state lives there between calls.
    """

    keeps_state = False

    def __init__(self, model: bytes | str | os.PathLike):
        self.tflite = _read(model)
        self.inputs, self.outputs = io_details(self.tflite)
        # Inputs and outputs are in the Keras model's order (keras-tflite wrote it into the file).
        self.in_model_order = model_io(self.tflite) is not None
        self.ops = op_names(self.tflite)
        self.batch_size = self.inputs[0].shape[0] if self.inputs[0].shape else 1

    def predict(self, x: Any) -> np.ndarray | list[np.ndarray]:
        """Runs float (or integer id) inputs of any batch size; returns float outputs.

        Args:
            x: One array for a single-input model; a dict by input name, or a list in the Keras
                model's input order (as `model.predict` takes it).

        Returns:
            One array for a single-output model, else a list in the model's output order.
        """
        arrays = self._by_input(x)
        count = len(arrays[0])
        results: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for start in range(0, count, self.batch_size):
            rows = np.arange(start, start + self.batch_size) % count  # pads the last batch
            quantized = [t.quantize(a[rows]) for t, a in zip(self.inputs, arrays)]
            raw = self._invoke(quantized)
            keep = min(self.batch_size, count - start)
            for out, tensor, value in zip(results, self.outputs, raw):
                out.append(tensor.dequantize(value)[:keep])
        outputs = [np.concatenate(chunks) for chunks in results]
        return outputs[0] if len(outputs) == 1 else outputs

    def _by_input(self, x: Any) -> list[np.ndarray]:
        if isinstance(x, Mapping):
            missing = [t.name for t in self.inputs if t.name not in x]
            if missing:
                raise ValueError(
                    f"Expected inputs keyed by {[t.name for t in self.inputs]}. "
                    f"Received keys: {sorted(x)}."
                )
            arrays = [np.asarray(x[t.name]) for t in self.inputs]
        else:
            arrays = [np.asarray(v) for v in (x if isinstance(x, Sequence) else [x])]
            if len(arrays) > 1 and not self.in_model_order:
                raise ValueError(
                    f"Expected inputs as a dict keyed by {[t.name for t in self.inputs]}: this "
                    ".tflite file does not record its model's input order (keras-tflite did not "
                    f"convert it), so a list is ambiguous. Received: a list of {len(arrays)} "
                    "arrays."
                )
        if len(arrays) != len(self.inputs):
            raise ValueError(
                f"Expected {len(self.inputs)} input(s) {[t.name for t in self.inputs]}. "
                f"Received: {len(arrays)}."
            )
        for tensor, array in zip(self.inputs, arrays):
            if tuple(array.shape[1:]) != tuple(tensor.shape[1:]):
                raise ValueError(
                    f"Expected input '{tensor.name}' with per-sample shape "
                    f"{tuple(tensor.shape[1:])}."
                    f" Received: an array of shape {tuple(array.shape)}."
                )
        return arrays

    @abc.abstractmethod
    def reset_state(self) -> None:
        """Back to the model's initial state (its variable tensors zeroed)."""

    @abc.abstractmethod
    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Runs one batch of already-quantized inputs; returns the raw outputs."""
