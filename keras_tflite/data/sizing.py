"""How many calibration samples are enough: until the ranges the calibrator records converge.

TFLite's post-training calibration records each tensor's min and max over the representative
samples. We watch the same thing on the float model - its inputs and every layer's output - on
growing random subsets (500, 1000, 2000, ... samples). A size is enough when doubling it moves no
tensor's min or max by more than `RANGE_TOLERANCE` of that tensor's range.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite import caller
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES, Calibration

RANGE_TOLERANCE = 0.02
# Starts at the default size: the fused LSTM's internal tensors (cell state, gates) calibrate on
# ranges this probe cannot see, and below ~500 samples the seed's LSTM loses accuracy even when
# its layer outputs' ranges have converged (measured: 100 samples, 0.136 °F vs 0.103 at 500).
AUTO_START = DEFAULT_NUM_SAMPLES
AUTO_LIMIT = 10_000
# A fixed size is reported as short when 4x the samples widen some tensor's range this much.
SHORT_TOLERANCE = 0.10


@dataclasses.dataclass
class SizeEvidence:
    size: int
    worst_change: float  # largest relative range change on doubling (or on 4x, for a fixed size)
    worst_tensor: str


def _probe(model: Any):
    """A function from input arrays to [inputs..., every layer's output...], with names."""
    try:
        inputs = list(model.inputs)
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        outputs = [t for layer in layers for t in _as_list(layer.output)]
        names = [f"input {t.name}" for t in inputs] + [
            layer.name for layer in layers for _ in _as_list(layer.output)
        ]
        probe = _functional(model, inputs, outputs)
    except (AttributeError, ValueError, TypeError):
        return None, []
    return probe, names


def _functional(model: Any, inputs, outputs):
    module = type(model).__module__.split(".")[0]
    framework = __import__(module)
    return framework.Model(inputs, outputs)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ranges(probe, names, arrays: list[np.ndarray]) -> np.ndarray:
    """[tensor, (min, max)] over the given samples."""
    outputs = probe.predict(arrays if len(arrays) > 1 else arrays[0], batch_size=256, verbose=0)
    tensors = list(arrays) + _as_list(outputs)
    return np.array([[float(np.min(t)), float(np.max(t))] for t in tensors])


def _change(small: np.ndarray, large: np.ndarray) -> np.ndarray:
    span = np.maximum(large[:, 1] - large[:, 0], 1e-12)
    return np.max(np.abs(large - small), axis=1) / span


def auto_size(model: Any, pool: Calibration, input_names: list[str]) -> SizeEvidence:
    """The smallest doubling from AUTO_START whose ranges the next doubling confirms."""
    probe, names = _probe(model)
    if probe is None:
        return SizeEvidence(min(pool.num_samples, 500), float("nan"), "(model layers not visible)")
    names = [f"input {n}" for n in input_names] + names[len(input_names) :]
    size = min(AUTO_START, pool.num_samples)
    previous = _ranges(probe, names, [pool.arrays[n][:size] for n in input_names])
    while size * 2 <= pool.num_samples:
        current = _ranges(probe, names, [pool.arrays[n][: size * 2] for n in input_names])
        change = _change(previous, current)
        if change.max() <= RANGE_TOLERANCE:
            break
        size, previous = size * 2, current
    else:
        change = np.zeros(len(previous))
    worst = int(np.argmax(change))
    return SizeEvidence(size, float(change[worst]), names[worst] if names else "")


def check_fixed_size(
    model: Any, pool: Calibration, input_names: list[str], size: int
) -> str | None:
    """Warns, with the evidence, when `size` samples see clearly narrower ranges than 4x as many.

    Returns:
        The evidence when it warned, else None.
    """
    if pool.num_samples < 2 * size:
        return None
    probe, names = _probe(model)
    if probe is None:
        return None
    names = [f"input {n}" for n in input_names] + names[len(input_names) :]
    small = _ranges(probe, names, [pool.arrays[n][:size] for n in input_names])
    large = _ranges(probe, names, [pool.arrays[n] for n in input_names])
    change = _change(small, large)
    worst = int(np.argmax(change))
    if change[worst] <= SHORT_TOLERANCE:
        return None
    evidence = (
        f"{size} calibration samples look short: with {pool.num_samples} samples the range of "
        f"'{names[worst]}' is {change[worst]:.0%} wider, so int8 would clip it"
    )
    caller.warn(f'{evidence}. Pass num_calibration_samples="auto" or a larger number.')
    return evidence


def shuffled(pool: Calibration) -> Calibration:
    """The pool in a seeded random order, so that every prefix is a random subset."""
    order = np.random.default_rng(pool.seed).permutation(pool.num_samples)
    return _subset(pool, order)


def prefix(pool: Calibration, size: int) -> Calibration:
    """The first `size` samples of a shuffled pool, back in source order."""
    return _subset(pool, np.argsort(pool.source_indices[:size]))


def _subset(pool: Calibration, order: np.ndarray) -> Calibration:
    return Calibration(
        {n: a[order] for n, a in pool.arrays.items()},
        pool.source_indices[order],
        pool.available,
        pool.seed,
        pool.shortfall,
    )
