"""The data an export needs, prepared once before training: calibration samples sized for the
model, and validation samples with targets."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_tflite import qat
from keras_tflite.data import calibration, sizing
from keras_tflite.data.calibration import Calibration
from keras_tflite.quantization import calibrates
from keras_tflite.specs import TensorInfo, input_infos


def calibration_samples(
    model: Any, data: Any, quantization: str, num_samples: int | str, seed: int
) -> tuple[Calibration, list[TensorInfo]]:
    """The calibration samples for `model` (sized, checked), and its inputs as the worker will
    trace them (shapes completed from the data where the model leaves them open).

    Raises:
        ValueError: for a bad size, missing data where calibration needs it, or data that does
            not match the model's inputs.
    """
    qat.check_mode(model, quantization)
    declared = input_infos(model)
    calibrated = calibrates(model, quantization)
    if data is None:
        if calibrated:
            raise ValueError(
                f"Expected representative_data for quantization={quantization!r}: int8 calibration "
                "needs samples of the model's inputs. Received: None."
            )
        if declared is None:
            raise ValueError(
                "Expected representative_data: the model does not declare its inputs (a subclassed "
                "model), so their shapes must come from a sample. Received: None."
            )
        data = {i.name: np.zeros((1, *i.shape), i.dtype) for i in declared}
        num_samples = 1  # a placeholder sample carries the shapes; nothing calibrates on it
    _check_num_samples(num_samples)
    sized = calibrated and declared is not None
    auto = num_samples == "auto"
    pool_size = sizing.AUTO_LIMIT if auto else num_samples * (4 if sized else 1)
    drawn = calibration.collect(
        data, declared, num_samples=pool_size, seed=seed, calibrates=calibrated
    )
    if sized:
        drawn = _sized(model, drawn, [i.name for i in declared], num_samples)
    inputs = declared or calibration.model_inputs(drawn)
    if declared is not None and any(None in i.shape for i in inputs):
        inputs = [TensorInfo(i.name, drawn.arrays[i.name].shape[1:], i.dtype) for i in inputs]
    calibration.check_dtypes(drawn, inputs, "representative_data")
    return drawn, inputs


def _check_num_samples(num_samples: Any) -> None:
    if num_samples == "auto":
        return
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(
            "Expected num_calibration_samples to be a positive integer (a count of samples, not "
            f'batches) or "auto". Received: {num_samples!r}.'
        )


def _sized(model: Any, pool: Calibration, names: list[str], num_samples: int | str) -> Calibration:
    """The calibration subset: auto-sized, or the fixed size checked against a 4x larger draw."""
    pool, shortfall = sizing.shuffled(pool), None
    if num_samples == "auto":
        size = sizing.auto_size(model, pool, names).size
    else:
        size = min(num_samples, pool.num_samples)
        shortfall = sizing.check_fixed_size(model, pool, names, size)
    chosen = sizing.prefix(pool, size)
    chosen.shortfall = pool.shortfall or shortfall
    return chosen
