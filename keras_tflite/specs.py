"""What the converter needs to know about a model, without holding the model."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One model input or output: its name, per-sample shape and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(np.dtype(self.dtype), np.integer)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(data["name"], tuple(data["shape"]), data["dtype"])


def framework_of(model: Any) -> str:
    """Returns "keras" for a Keras 3 model and "tf_keras" for a tf_keras (Keras 2) model
    ("graph" for a frozen TensorFlow graph that `keras-tflite convert` loaded)."""
    if getattr(model, "framework", None) == "graph":
        return "graph"
    for klass in type(model).__mro__:
        module = klass.__module__
        if module.startswith("keras.") and klass.__name__ == "Model":
            return "keras"
        if module.startswith("tf_keras.") and klass.__name__ == "Model":
            return "tf_keras"
    raise TypeError(
        "Expected a Keras 3 or tf_keras model (a subclass of keras.Model or tf_keras.Model). "
        f"Received: model of type {type(model).__qualname__}."
    )


def sanitize(name: str) -> str:
    """Makes a name usable as a TensorFlow signature key ("input_layer:0" -> "input_layer_0")."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() else f"input_{cleaned}"


def _dtype_name(dtype: Any) -> str:
    return np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).name


def input_infos(model: Any) -> list[TensorInfo] | None:
    """The model's inputs in call order, or None for a subclassed model without known inputs."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    # The InputLayer's name: what `summary()` shows and what a reloaded model's tensors carry
    # (an unnamed Keras 3 input's tensor is 'keras_tensor_N', its layer 'input_layer_N').
    names = [
        sanitize((_layer_name(t) or getattr(t, "name", f"input_{i}")).split(":")[0])
        for i, t in enumerate(inputs)
    ]
    if len(set(names)) != len(names):
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    return [
        TensorInfo(name, tuple(t.shape[1:]), _dtype_name(t.dtype)) for name, t in zip(names, inputs)
    ]


def output_names(model: Any, count: int) -> list[str]:
    """Output names in the model's order: Keras' own, else the producing layers' names."""
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count:
        names = [_layer_name(t) for t in (getattr(model, "outputs", None) or [])]
    if len(names) != count or None in names:
        names = [f"output_{i}" for i in range(count)]
    return [sanitize(n) for n in names]


def _layer_name(tensor: Any) -> str | None:
    history = getattr(tensor, "_keras_history", None)
    producer = getattr(history, "operation", None) or getattr(history, "layer", None)
    return getattr(producer, "name", None)


def infos_from_sample(sample: dict[str, np.ndarray]) -> list[TensorInfo]:
    """Input descriptions taken from one sample, for models whose inputs Keras does not know."""
    return [TensorInfo(n, tuple(a.shape), a.dtype.name) for n, a in sample.items()]


def walk_layers(layer: Any) -> Iterator[Any]:
    """Every layer inside `layer` (itself included), through wrappers and nested models."""
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


def flat(outputs: Any) -> list[np.ndarray]:
    """A model's outputs (one array, a list, or a dict by name) as a list of arrays."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]
