"""Any data a Keras user has, as single named samples: the one reader of every source.

Sources: numpy arrays or tensors, `(x, y)` and `(x, y, sample_weight)` tuples, dicts keyed by
input name, a `tf.data.Dataset` (batched or not), a generator or a `keras.utils.PyDataset`.
`draw` takes a seeded random subset of a size counted in samples (never batches), in one pass,
with the targets when asked; calibration and validation both draw through it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from keras_tflite.specs import TensorInfo

# A stream (generator, repeated dataset) is read for at most this many samples.
MAX_SCANNED_SAMPLES = 100_000


@dataclasses.dataclass
class Drawn:
    """Chosen samples, stacked per input name, in source order."""

    arrays: dict[str, np.ndarray]
    targets: list[np.ndarray] | None  # per output; None when the data has no targets
    indices: np.ndarray  # each chosen sample's position in the source
    available: int  # samples the source held (up to MAX_SCANNED_SAMPLES for a stream)


def draw(
    data: Any,
    inputs: list[TensorInfo] | None,
    count: int,
    seed: int,
    argument: str,
    *,
    with_targets: bool = False,
) -> Drawn:
    """A seeded random subset of `count` samples of `data`, checked against `inputs`.

    Raises:
        ValueError: naming `argument`, when the data is empty or a sample does not match.
    """
    rng = np.random.default_rng(seed)
    if _in_memory(data):
        chosen, indices, available = _draw_from_arrays(data, inputs, count, rng, argument)
    else:
        pairs = _pairs(data, inputs, argument)
        chosen, indices, available = _reservoir(pairs, count, rng)
    if available == 0:
        raise ValueError(f"Expected {argument} to hold at least one sample. Received: no samples.")
    order = np.argsort(indices)
    arrays = {name: np.stack([chosen[i][0][name] for i in order]) for name in chosen[0][0]}
    targets = None
    if with_targets and all(chosen[i][1] is not None for i in order):
        width = len(chosen[0][1])
        targets = [np.stack([chosen[i][1][k] for i in order]) for k in range(width)]
    return Drawn(arrays, targets, np.asarray(indices)[order], available)


def _draw_from_arrays(data, inputs, count, rng, argument):
    named = {n: numpy(v) for n, v in by_name(features(data), inputs, argument).items()}
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
    found = targets_of(data)
    take = min(count, available)
    indices = np.sort(rng.choice(available, size=take, replace=False)) if available else []
    chosen = [
        (
            {n: a[i] for n, a in named.items()},
            None if found is None else [t[i] for t in found],
        )
        for i in indices
    ]
    return chosen, list(indices), available


def _reservoir(pairs: Iterator[tuple], count: int, rng) -> tuple[list, list[int], int]:
    """A uniform random `count` of a stream in one pass (reservoir sampling)."""
    chosen: list[tuple] = []
    indices: list[int] = []
    seen = 0
    for pair in itertools.islice(pairs, MAX_SCANNED_SAMPLES):
        if seen < count:
            chosen.append(pair)
            indices.append(seen)
        else:
            j = int(rng.integers(0, seen + 1))
            if j < count:
                chosen[j], indices[j] = pair, seen
        seen += 1
    return chosen, indices, seen


def _pairs(data: Any, inputs: list[TensorInfo] | None, argument: str) -> Iterator[tuple]:
    """(inputs by name, targets or None) per sample, from a stream of batches or of samples."""
    index = 0
    for element in _elements(data, argument):
        named = {n: numpy(v) for n, v in by_name(features(element), inputs, argument).items()}
        targets = targets_of(element)
        if not _is_batched(named, inputs, index, argument):
            yield named, targets
            index += 1
            continue
        for i in range(len(next(iter(named.values())))):
            yield (
                {n: a[i] for n, a in named.items()},
                None if targets is None else [t[i] for t in targets],
            )
            index += 1


def _in_memory(data: Any) -> bool:
    """Whether `data` is in-memory arrays (any nesting of lists, tuples and dicts)."""
    leaves = _leaves(data)
    return bool(leaves) and all(isinstance(leaf, np.ndarray) or _is_tensor(leaf) for leaf in leaves)


def _leaves(structure: Any) -> list[Any]:
    if isinstance(structure, Mapping):
        return [leaf for v in structure.values() for leaf in _leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in _leaves(v)]
    return [structure]


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype")


def features(element: Any) -> Any:
    """Drops targets and sample weights: Keras' `(x, y)` and `(x, y, sample_weight)` convention."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[0]
    return element


def targets_of(element: Any) -> list[np.ndarray] | None:
    """The `y` of an `(x, y)` or `(x, y, sample_weight)` element, one array per output."""
    if not (isinstance(element, tuple) and len(element) in (2, 3)):
        return None
    y = element[1]
    return [numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y])]


def by_name(features: Any, inputs: list[TensorInfo] | None, argument: str) -> dict[str, Any]:
    """The features as a dict by input name: a dict as it is, a list in the model's order."""
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
            f"Expected {argument} to provide {len(names)} input(s) {names} (as a list in that "
            "order "
            f"or a dict by name). Received: {len(values)} array(s)."
        )
    return dict(zip(names, values))


def _default_names(count: int) -> list[str]:
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def numpy(value: Any) -> np.ndarray:
    if _is_tensor(value) and not isinstance(value, np.ndarray):
        return value.numpy()
    return np.asarray(value)


def _elements(data: Any, argument: str) -> Iterable[Any]:
    if hasattr(data, "as_numpy_iterator"):
        from keras_tflite import compat

        in_graph = compat.graph_dataset_elements(
            data, argument
        )  # made under disable_eager_execution()
        return data.as_numpy_iterator() if in_graph is None else in_graph
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
    """Whether `array` is a batch of `info` samples; raises when it is neither."""
    ranks = {len(info.shape) + 1: True, len(info.shape): False}
    if batched is not None:
        ranks = {len(info.shape) + 1: True}
    verdict = ranks.get(array.ndim)
    sample_shape = array.shape[1:] if verdict else array.shape
    if verdict is None or not shape_fits(info.shape, sample_shape):
        raise ValueError(
            f"Expected {argument} input '{info.name}' (sample {index}) to have per-sample shape "
            f"{shape_text(info.shape)}{' in batches' if batched else ''}. "
            f"Received: an array of shape {tuple(array.shape)}."
        )
    return verdict


def shape_fits(expected: tuple, received: tuple) -> bool:
    """Whether a sample's shape is the declared one (None matches any size)."""
    return len(expected) == len(received) and all(
        e is None or e == r for e, r in zip(expected, received)
    )


def shape_text(shape: tuple) -> str:
    """(24, 3) as Python writes it, None for an unknown dimension: '(24, 3)', '(8,)'."""
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims}{',' if len(shape) == 1 else ''})"
