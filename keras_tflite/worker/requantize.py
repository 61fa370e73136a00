"""Re-quantizing a weights snapshot instead of converting it again.

Between two snapshots of one fit only the weights change. So the first conversion also keeps a
float *template*: the converter's float flatbuffer, just before quantization. Where each weight
landed in it is found by converting once more with every weight element set to a distinct code
(an integer that float32 holds exactly): a buffer of codes is a permutation of known weights, and
must reproduce the first snapshot's float buffer exactly. A later snapshot writes its weights into
the template's buffers, and the converter object that made the template quantizes it again: the
converter's own calibrator, quantizer, buffer deduplication and conversion metadata.

A buffer computed from weights (a BatchNormalization folded into a convolution) has no place to
write to: that model is converted in full at every export, and the refusal says why.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from keras_tflite import compat

# Codes start here: integers in [2^22, 2^24) are exact in float32, and no trained weight is one.
_CODE_BASE = 2**22
_MAX_WEIGHTS = 2**24 - _CODE_BASE


class NotRequantizable(Exception):
    """This model (or this snapshot) must be converted in full; the message says why.

    Attributes:
        retry: A later snapshot may still make a template (this one's weights were special).
    """

    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.retry = retry


class _FloatModelCaught(Exception):
    """Stops a code conversion once the float flatbuffer exists: its quantization is not needed."""


class Capture:
    """Watches one full conversion: the float flatbuffer the converter quantizes, and how.

    Usage: `capture = Capture(converter)` before `converter.convert()`; `capture.release()`
    after it.
    """

    def __init__(self, converter: Any):
        self.converter = converter
        self.optimize = compat.quantizer_step(converter)  # the converter's own
        self.float_model: bytes | None = None
        self.arguments: tuple = ((), {})
        self.metadata: Any = None
        if self.optimize is None:  # nothing to watch: `Template` says so, the fit converts
            return

        def watched(model, *args, **kwargs):
            self.float_model, self.arguments = bytes(model), (args, kwargs)
            # Before the sparsity modes are added to it.
            self.metadata = copy.deepcopy(getattr(converter, "_metadata", None))
            return self.optimize(model, *args, **kwargs)

        compat.watch_quantizer_step(converter, watched)

    def release(self) -> None:
        compat.unwatch_quantizer_step(self.converter)


class Template:
    """A model's float flatbuffer and the place of every weight in it.

    Args:
        capture: The first snapshot's full conversion, watched.
        weights: That snapshot's weights (`model.get_weights()`).
        code_model: The float flatbuffer of the same model with `coded(weights)` as weights.
    """

    def __init__(self, capture: Capture, weights: list[np.ndarray], code_model: bytes):
        if capture.float_model is None:
            raise NotRequantizable("the converter produced no float model to re-quantize")
        self._capture = capture
        self._float = bytearray(capture.float_model)
        self._places = _places(capture.float_model, code_model, _flat(weights))
        if not self._places:
            raise NotRequantizable("no weight was found in the converted model's buffers")

    def apply(self, weights: list[np.ndarray], representative_dataset: Callable | None) -> bytes:
        """The quantized flatbuffer a full conversion of `weights` gives (before naming I/O).

        Raises:
            NotRequantizable: when this snapshot makes two buffers equal (the converter would
                merge them, so the layout is no longer the template's).
        """
        flat = _flat(weights)
        model = bytearray(self._float)
        written = set()
        for place in self._places:
            values = flat[place.indices]
            model[place.offset : place.offset + values.nbytes] = values.tobytes()
            written.add(place.offset)
        _refuse_merged_buffers(model, written)
        return self._quantize(bytes(model), representative_dataset)

    def _quantize(self, float_model: bytes, representative_dataset: Callable | None) -> bytes:
        """What the converter does after its float conversion (its quantizing step and
        `_convert_and_export_metrics` in tensorflow/lite/python/lite.py), on `float_model`."""
        from tensorflow.lite.tools import flatbuffer_utils

        converter = self._capture.converter
        if representative_dataset is not None:
            converter.representative_dataset = representative_dataset
        args, kwargs = self._capture.arguments
        model = self._capture.optimize(float_model, *args, **kwargs)
        if converter.exclude_conversion_metadata:
            return bytes(model)
        model_object = flatbuffer_utils.convert_bytearray_to_object(model)
        metadata = copy.deepcopy(self._capture.metadata)
        model_object = compat.with_conversion_metadata(model_object, metadata)
        if model_object is None:
            raise NotRequantizable("this TensorFlow's converter finishes a model in other steps")
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))


def coded(weights: list[np.ndarray]) -> list[np.ndarray]:
    """`weights` with every float element replaced by its code: `_CODE_BASE` + its index in
    the flattened float weights."""
    total = sum(w.size for w in weights if w.dtype.kind == "f")
    if total > _MAX_WEIGHTS:
        raise NotRequantizable(f"{total} weights are more than codes can tell apart")
    out, start = [], 0
    for w in weights:
        if w.dtype.kind != "f":
            out.append(w)
            continue
        codes = _CODE_BASE + start + np.arange(w.size, dtype=np.float64)
        out.append(codes.reshape(w.shape).astype(w.dtype))
        start += w.size
    return out


def float_model(converter: Any) -> bytes:
    """The float flatbuffer `converter` would quantize, without quantizing it."""
    caught: dict[str, bytes] = {}

    def catch(model, *args, **kwargs):
        caught["model"] = bytes(model)
        raise _FloatModelCaught

    if compat.quantizer_step(converter) is None:
        raise NotRequantizable("this TensorFlow's converter has no quantizing step to watch")
    compat.watch_quantizer_step(converter, catch)
    try:
        converter.convert()
    except _FloatModelCaught:
        pass
    if "model" not in caught:
        raise NotRequantizable("the converter made no float model")
    return caught["model"]


class _Place:
    """Where one buffer's bytes start in the flatbuffer, and which flat weights fill it."""

    def __init__(self, offset: int, indices: np.ndarray):
        self.offset, self.indices = offset, indices


def _flat(weights: list[np.ndarray]) -> np.ndarray:
    floats = [np.asarray(w, np.float32).ravel() for w in weights if w.dtype.kind == "f"]
    return np.concatenate(floats) if floats else np.zeros(0, np.float32)


def _buffers(blob: bytes) -> list[tuple[int, bytes]]:
    """(byte offset, data) of every buffer of a flatbuffer, in order (empty ones at -1)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(blob, 0)
    base = np.frombuffer(blob, np.uint8).ctypes.data
    found = []
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength() == 0:
            found.append((-1, b""))
            continue
        data = buffer.DataAsNumpy()
        found.append((data.ctypes.data - base, data.tobytes()))
    return found


def _places(real_model: bytes, code_model: bytes, flat: np.ndarray) -> list[_Place]:
    """Each weight buffer of `real_model`: found in `code_model` as codes, and checked to hold
    exactly the real weights those codes name."""
    real, code = _buffers(real_model), _buffers(code_model)
    if [len(d) for _, d in real] != [len(d) for _, d in code]:
        raise NotRequantizable(
            "the model's buffers change with its weights (equal weights merged?)", retry=True
        )
    places = []
    for index, ((offset, data), (_, coded_data)) in enumerate(zip(real, code)):
        if data == coded_data:
            continue  # a constant the weights do not touch
        codes = np.frombuffer(coded_data, np.float32).astype(np.float64) - _CODE_BASE
        named = np.all(codes == np.round(codes)) and np.all((codes >= 0) & (codes < flat.size))
        indices = codes.astype(np.int64) if named else None
        if indices is None or flat[indices].tobytes() != data:
            raise NotRequantizable(
                f"buffer {index} is computed from the weights (a BatchNormalization folded into "
                "the layer before it, or a constant-folded expression), not a copy of them"
            )
        places.append(_Place(offset, indices))
    return places


def _refuse_merged_buffers(model: bytearray, written: set[int]) -> None:
    digests: dict[bytes, int] = {}
    for offset, data in _buffers(bytes(model)):
        if offset < 0:
            continue
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest in digests and (offset in written or digests[digest] in written):
            raise NotRequantizable(
                "two weight buffers are equal in this snapshot, so the converter would merge "
                "them: converted in full"
            )
        digests[digest] = offset
