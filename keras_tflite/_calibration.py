"""Representative samples from any data source a Keras user has, sized in samples."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from keras_tflite._specs import TensorInfo, infos_from_sample

# Evidence for both numbers: benchmarks/calibration_size.py (README, "Calibration size").
DEFAULT_NUM_SAMPLES = 500
MIN_RECOMMENDED_SAMPLES = 100
# A stream (generator, repeated dataset) is read for at most this many samples.
MAX_SCANNED_SAMPLES = 100_000


@dataclasses.dataclass
class Calibration:
    """The drawn subset: one array per input name, stacked along a leading sample axis."""

    arrays: dict[str, np.ndarray]
    source_indices: np.ndarray
    available: int
    seed: int
    # Why these samples may be too few to calibrate on (a warning was given), else None.
    shortfall: str | None = None

    @property
    def num_samples(self) -> int:
        return len(self.source_indices)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        return {name: a[i] for name, a in self.arrays.items()}


def collect(
    data: Any,
    inputs: list[TensorInfo] | None,
    *,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    argument: str = "representative_data",
    calibrates: bool = True,
) -> Calibration:
    """Draws a seeded random subset of `num_samples` samples from `data`, validated against `inputs`.

    Args:
        data: numpy arrays, `(x, y)` tuples, dicts keyed by input name, a `tf.data.Dataset`
            (batched or not), a Python generator or a `keras.utils.PyDataset`.
        inputs: The model's inputs; None when the model does not declare them (then the first
            sample's names, shapes and dtypes are taken as the contract).
        num_samples: How many samples to draw. Never a number of batches.
        seed: Seed of the random draw.
        argument: The argument name used in error messages.
        calibrates: The samples will calibrate int8 ranges (not only judge a model): warn when
            they are too few for that.

    Returns:
        The `Calibration` with the chosen samples in their source order.

    Raises:
        ValueError: if the data is empty, or a chosen sample has the wrong structure, shape or
            dtype, or holds NaN or an infinity.
    """
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(
            f"Expected num_calibration_samples to be a positive integer (a count of samples, not "
            f"batches). Received: {num_samples!r}."
        )
    rng = np.random.default_rng(seed)
    in_memory = _as_arrays(data)
    if in_memory is not None:
        chosen, indices, available = _draw_from_arrays(
            in_memory, inputs, num_samples, rng, argument
        )
    else:
        chosen, indices, available = _draw_from_stream(data, inputs, num_samples, rng, argument)
    if available == 0:
        raise ValueError(f"Expected {argument} to hold at least one sample. Received: no samples.")
    order = np.argsort(indices)
    arrays = {name: np.stack([chosen[i][name] for i in order]) for name in chosen[0]}
    calibration = Calibration(arrays, np.asarray(indices)[order], available, seed)
    _check_values(calibration, argument)
    if calibrates and available < min(num_samples, MIN_RECOMMENDED_SAMPLES):
        calibration.shortfall = f"calibrated on only {available} samples"
        warnings.warn(
            f"{argument} holds only {available} samples; int8 calibration with fewer than "
            f"{MIN_RECOMMENDED_SAMPLES} samples often clips real activations (a flat-line model). "
            "Pass more representative samples.",
            stacklevel=3,
        )
    return calibration


def _as_arrays(data: Any) -> Any | None:
    """The data itself when it is in-memory arrays (any nesting of lists, tuples and dicts)."""
    leaves = _leaves(data)
    if leaves and all(isinstance(leaf, np.ndarray) or _is_tensor(leaf) for leaf in leaves):
        return data
    return None


def _leaves(structure: Any) -> list[Any]:
    if isinstance(structure, Mapping):
        return [leaf for v in structure.values() for leaf in _leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in _leaves(v)]
    return [structure]


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype")


def _features(element: Any) -> Any:
    """Drops targets and sample weights: Keras' `(x, y)` and `(x, y, sample_weight)` convention."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[0]
    return element


def _by_name(features: Any, inputs: list[TensorInfo] | None, argument: str) -> dict[str, Any]:
    if isinstance(features, Mapping):
        named = dict(features)
        if inputs is not None:
            expected = [i.name for i in inputs]
            missing = [n for n in expected if n not in named]
            if missing:
                raise ValueError(
                    f"Expected {argument} keyed by the model's input names {expected}. "
                    f"Received keys: {sorted(named)}."
                )
            named = {n: named[n] for n in expected}
        return named
    values = list(features) if isinstance(features, (list, tuple)) else [features]
    names = [i.name for i in inputs] if inputs is not None else _default_names(len(values))
    if len(values) != len(names):
        raise ValueError(
            f"Expected {argument} to provide {len(names)} input(s) {names} (as a list in that order "
            f"or a dict by name). Received: {len(values)} array(s)."
        )
    return dict(zip(names, values))


def _default_names(count: int) -> list[str]:
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def _numpy(value: Any) -> np.ndarray:
    return (
        value.numpy()
        if _is_tensor(value) and not isinstance(value, np.ndarray)
        else np.asarray(value)
    )


def _draw_from_arrays(data, inputs, num_samples, rng, argument):
    named = {n: _numpy(v) for n, v in _by_name(_features(data), inputs, argument).items()}
    counts = {n: len(a) if a.ndim else 0 for n, a in named.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(
            f"Expected every input of {argument} to hold the same number of samples. "
            f"Received: {counts}."
        )
    available = next(iter(counts.values()))
    if inputs is not None:
        for info in inputs:
            _check_rank(info, named[info.name], batched=True, index=0, argument=argument)
    take = min(num_samples, available)
    indices = np.sort(rng.choice(available, size=take, replace=False)) if available else []
    chosen = [{n: a[i] for n, a in named.items()} for i in indices]
    return chosen, list(indices), available


def _draw_from_stream(data, inputs, num_samples, rng, argument):
    reservoir: list[dict[str, np.ndarray]] = []
    indices: list[int] = []
    seen = 0
    for sample in itertools.islice(_samples(data, inputs, argument), MAX_SCANNED_SAMPLES):
        if seen < num_samples:
            reservoir.append(sample)
            indices.append(seen)
        else:
            j = int(rng.integers(0, seen + 1))
            if j < num_samples:
                reservoir[j], indices[j] = sample, seen
        seen += 1
    return reservoir, indices, seen


def _samples(data: Any, inputs: list[TensorInfo] | None, argument: str) -> Iterator[dict]:
    """Yields single samples from a stream of batches or of samples."""
    index = 0
    for element in _elements(data, argument):
        named = {n: _numpy(v) for n, v in _by_name(_features(element), inputs, argument).items()}
        batched = _is_batched(named, inputs, index, argument)
        if not batched:
            yield named
            index += 1
            continue
        for i in range(len(next(iter(named.values())))):
            yield {n: a[i] for n, a in named.items()}
            index += 1


def _elements(data: Any, argument: str) -> Iterable[Any]:
    if hasattr(data, "as_numpy_iterator"):
        return data.as_numpy_iterator()
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "on_epoch_end"):
        return (data[i] for i in range(len(data)))  # keras.utils.PyDataset / Sequence
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return data
    raise ValueError(
        f"Expected {argument} to be numpy arrays, a dict of arrays by input name, (x, y) tuples, "
        "a tf.data.Dataset, a generator or a keras.utils.PyDataset. "
        f"Received: {type(data).__qualname__}."
    )


def _is_batched(named: dict, inputs: list[TensorInfo] | None, index: int, argument: str) -> bool:
    if inputs is None:
        return True
    verdicts = {
        _check_rank(info, named[info.name], batched=None, index=index, argument=argument)
        for info in inputs
    }
    return verdicts.pop() if len(verdicts) == 1 else True


def _check_rank(info: TensorInfo, array: np.ndarray, *, batched, index: int, argument: str) -> bool:
    """Whether `array` is a batch of `info` samples; raises when it is neither a batch nor a sample."""
    ranks = {len(info.shape) + 1: True, len(info.shape): False}
    if batched is not None:
        ranks = {len(info.shape) + 1: True}
    verdict = ranks.get(array.ndim)
    sample_shape = array.shape[1:] if verdict else array.shape
    if verdict is None or not _shape_fits(info.shape, sample_shape):
        raise ValueError(
            f"Expected {argument} input '{info.name}' (sample {index}) to have per-sample shape "
            f"{_shape_str(info.shape)}{' in batches' if batched else ''}. "
            f"Received: an array of shape {tuple(array.shape)}."
        )
    return verdict


def _shape_fits(expected: tuple, received: tuple) -> bool:
    return len(expected) == len(received) and all(
        e is None or e == r for e, r in zip(expected, received)
    )


def _shape_str(shape: tuple) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _check_values(calibration: Calibration, argument: str) -> None:
    for name, array in calibration.arrays.items():
        kind = array.dtype.kind
        if kind not in "biuf":
            raise ValueError(
                f"Expected {argument} input '{name}' to hold numbers. Received dtype {array.dtype}."
            )
        if kind != "f":
            continue
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            value = array[row][~np.isfinite(array[row])].flat[0]
            raise ValueError(
                f"Expected {argument} input '{name}' to hold finite values (NaN and infinities break "
                f"int8 calibration; -inf crashes the converter). Received: {value} in sample "
                f"{int(calibration.source_indices[row])}."
            )


# Validation inputs reaching this far (in calibration spans) beyond the calibrated range are
# clipped by int8: calibration did not represent the data the model is judged on.
COVERAGE_TOLERANCE = 0.25


def coverage_gap(calibration: Calibration, validation: dict[str, np.ndarray]) -> str | None:
    """Why the calibration samples do not represent `validation`, or None when they do.

    Compares each float input's calibrated range (what int8 will represent) with the range the
    validation samples reach.
    """
    for name, array in calibration.arrays.items():
        other = validation.get(name)
        if other is None or array.dtype.kind != "f" or not len(array) or not len(other):
            continue
        low, high = float(array.min()), float(array.max())
        reach_low, reach_high = float(other.min()), float(other.max())
        span = max(high - low, 1e-12)
        beyond = max(low - reach_low, reach_high - high) / span
        if beyond > COVERAGE_TOLERANCE:
            return (
                f"the calibration samples of input '{name}' span [{low:.3g}, {high:.3g}] while "
                f"the validation samples reach [{reach_low:.3g}, {reach_high:.3g}]: int8 clips "
                "what calibration did not see"
            )
    return None


def check_dtypes(calibration: Calibration, inputs: list[TensorInfo], argument: str) -> None:
    """Integer inputs (token ids) need integer data; float inputs take any numbers."""
    for info in inputs:
        array = calibration.arrays[info.name]
        if info.is_integer and array.dtype.kind == "f":
            raise ValueError(
                f"Expected {argument} input '{info.name}' to hold integers ({info.dtype}, e.g. token "
                f"ids). Received: dtype {array.dtype}."
            )


def model_inputs(calibration: Calibration) -> list[TensorInfo]:
    return infos_from_sample(calibration.sample(0))
