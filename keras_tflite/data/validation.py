"""The samples each export is judged on: a seeded random subset of validation data, with targets."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite.data import samples
from keras_tflite.specs import TensorInfo

DEFAULT_VALIDATION_SAMPLES = 256


@dataclasses.dataclass
class Validation:
    """Inputs by name and, when the data has them, the targets per output."""

    inputs: dict[str, np.ndarray]
    targets: list[np.ndarray] | None

    @property
    def num_samples(self) -> int:
        return len(next(iter(self.inputs.values())))


def validation_samples(
    data: Any, inputs: list[TensorInfo], count: int, seed: int, argument: str = "validation_data"
) -> Validation:
    """Up to `count` samples of `data`, drawn with their targets.

    Raises:
        ValueError: naming the input and both shapes, when samples do not match the model.
    """
    drawn = samples.draw(data, inputs, count, seed + 1, argument, with_targets=True)
    return Validation(drawn.arrays, drawn.targets)
