"""Representative samples from any data source a Keras user has, sized in samples."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite import caller
from keras_tflite.data import samples
from keras_tflite.specs import TensorInfo, infos_from_sample

# Evidence for both numbers: benchmarks/calibration_size.py (README, "Calibration size").
DEFAULT_NUM_SAMPLES = 500
MIN_RECOMMENDED_SAMPLES = 100


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
    """Draws a seeded random subset of `num_samples` samples of `data`, checked against `inputs`.

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
    drawn = samples.draw(data, inputs, num_samples, seed, argument)
    calibration = Calibration(drawn.arrays, drawn.indices, drawn.available, seed)
    _check_values(calibration, argument)
    available = drawn.available
    if calibrates and available < min(num_samples, MIN_RECOMMENDED_SAMPLES):
        calibration.shortfall = f"calibrated on only {available} samples"
        caller.warn(
            f"{argument} holds only {available} samples; int8 calibration with fewer than "
            f"{MIN_RECOMMENDED_SAMPLES} samples often clips real activations (a flat-line model). "
            "Pass more representative samples."
        )
    return calibration


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
                f"Expected {argument} input '{name}' to hold finite values (NaN and infinities "
                "break "
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
    """Integer inputs (token ids) need integer data; float inputs take any numbers, cast here to
    the input's dtype (numpy's float64 to a float32 input, as `model.predict` takes it)."""
    for info in inputs:
        array = calibration.arrays[info.name]
        if info.is_integer and array.dtype.kind == "f":
            raise ValueError(
                f"Expected {argument} input '{info.name}' to hold integers ({info.dtype}, e.g. "
                "token "
                f"ids). Received: dtype {array.dtype}."
            )
        if not info.is_integer and array.dtype != np.dtype(info.dtype):
            calibration.arrays[info.name] = array.astype(info.dtype)


def model_inputs(calibration: Calibration) -> list[TensorInfo]:
    return infos_from_sample(calibration.sample(0))
