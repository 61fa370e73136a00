"""The worker's side of tensorflow-model-optimization: rebuild tfmot's wrappers, apply pruning
masks and strip them before converting."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_tflite.qat import PRUNED, PRUNING_CLASSES, QAT, tfmot_layers

__all__ = ["PRUNED", "QAT", "apply_masks", "load_scope", "strip_pruning"]


@contextlib.contextmanager
def load_scope(kinds: list[str]) -> Iterator[None]:
    """The custom-object scopes tf_keras needs to rebuild tfmot's wrappers."""
    with contextlib.ExitStack() as stack:
        if kinds:
            import tensorflow_model_optimization as tfmot

            if QAT in kinds:
                stack.enter_context(tfmot.quantization.keras.quantize_scope())
            if PRUNED in kinds:
                stack.enter_context(tfmot.sparsity.keras.prune_scope())
        yield


def apply_masks(model: Any) -> dict[str, float]:
    """Applies each pruning mask to its weights, as training's next step would; returns the
    fraction of zeros in each pruned layer's pruned weights."""
    result = {}
    for layer in tfmot_layers(model):
        if type(layer).__name__ not in PRUNING_CLASSES or not layer.pruning_vars:
            continue
        zeros = total = 0
        for weight, mask, _ in layer.pruning_vars:
            masked = np.asarray(weight.numpy()) * np.asarray(mask.numpy())
            weight.assign(masked)  # what UpdatePruningStep would leave after its next step
            zeros, total = zeros + int(np.sum(masked == 0)), total + masked.size
        result[layer.layer.name] = round(zeros / total, 4) if total else 0.0
    return result


def strip_pruning(model: Any) -> Any:
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)
