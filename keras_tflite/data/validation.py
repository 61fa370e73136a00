"""The samples each export is judged on: the whole validation set when it is small enough to be
cheap, else a seeded random subset of it; with targets."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite.data import samples
from keras_tflite.specs import TensorInfo

# Judging costs about 1.5 ms a sample for the seed LSTM (120 x 3 windows; float, LiteRT and TFLite
# Micro) and 0.3 ms for the digits CNN: 1,024 samples take 1.5 s, and a draw of 1,024 of the seed's
# 1,728 puts the int8 loss within 1.5% (1 sd) of the whole set's, 256 within 4%
# (benchmarks/judge_cost.py). Smaller sets are judged whole.
DEFAULT_VALIDATION_SAMPLES = 1024


@dataclasses.dataclass
class Validation:
    """Inputs by name and, when the data has them, the targets per output; `available` is how
    many samples the data held (more than `num_samples` when they were drawn)."""

    inputs: dict[str, np.ndarray]
    targets: list[np.ndarray] | None
    available: int

    @property
    def num_samples(self) -> int:
        return len(next(iter(self.inputs.values())))

    def describe(self) -> dict[str, int]:
        """How many samples every figure of an export is measured on, and of how many."""
        return {"samples": self.num_samples, "available": self.available}


def validation_samples(
    data: Any, inputs: list[TensorInfo], count: int, seed: int, argument: str = "validation_data"
) -> Validation:
    """Up to `count` samples of `data`, drawn with their targets.

    Raises:
        ValueError: naming the input and both shapes, when samples do not match the model.
    """
    drawn = samples.draw(data, inputs, count, seed + 1, argument, with_targets=True)
    return Validation(drawn.arrays, drawn.targets, drawn.available)
