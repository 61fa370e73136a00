"""`convert()`: a Keras 3 or tf_keras model to a TFLite flatbuffer, in an isolated worker."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import _artifacts, _calibration, _job, _sizing, _strategies, _tfmot, _worker
from keras_tflite._inspect import QuantizedTensor, io_details, op_names
from keras_tflite._quantization import CALIBRATED_MODES, check_mode
from keras_tflite._specs import TensorInfo, framework_of, input_infos
from keras_tflite._worker import Attempt

DEFAULT_TIMEOUT = 600.0


class ConversionError(RuntimeError):
    """Every conversion strategy failed, crashed, hung or was skipped.

    Attributes:
        attempts: One `Attempt` per strategy, with its status and reason.
    """

    def __init__(self, message: str, attempts: list[Attempt]):
        super().__init__(message)
        self.attempts = attempts


@dataclasses.dataclass
class ConversionResult:
    """A converted model and how it was made.

    Attributes:
        tflite: The flatbuffer bytes.
        strategy: The conversion path that produced it.
        ops: Op names of every subgraph, in order.
        inputs: Each input's name (the model's), shape, dtype, scale and zero point.
        outputs: Each output's name, shape, dtype, scale and zero point, in the model's order.
        attempts: Every strategy tried or skipped before (and including) the one that worked.
        quantization: The quantization mode.
        num_calibration_samples: Samples the converter calibrated on (0 when not calibrated).
        seed: Seed of the calibration draw.
        batch_size: The fixed batch dimension of the converted model.
        quantization_aware: The int8 ranges were learned in quantization-aware training (tfmot),
            not calibrated.
        sparsity: For a pruned model (tfmot), the fraction of zero weights in each pruned layer.
    """

    tflite: bytes
    strategy: str
    ops: list[str]
    inputs: list[QuantizedTensor]
    outputs: list[QuantizedTensor]
    attempts: list[Attempt]
    quantization: str
    num_calibration_samples: int
    seed: int
    batch_size: int
    quantization_aware: bool = False
    sparsity: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.tflite)

    def save(self, path: str | Path) -> Path:
        """Writes the flatbuffer to `path` atomically (a crash never leaves a partial file) and
        returns it."""
        path = Path(path)
        _artifacts.atomic_write(path, self.tflite)
        return path


def convert(
    model: Any,
    representative_data: Any = None,
    *,
    quantization: str = "int8",
    batch_size: int = 1,
    num_calibration_samples: int | str = _calibration.DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    strategies: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ConversionResult:
    """Converts a Keras 3 or tf_keras model to TFLite, by default full int8 for microcontrollers.

    The conversion runs in a separate process: a converter crash or hang raises
    `ConversionError` here and leaves the caller and its model untouched. Strategies are tried in
    order until one converts; `result.attempts` says why each other one failed or was skipped.

    Args:
        model: A built Keras 3 model (any backend: it is rebuilt on TensorFlow to convert) or
            tf_keras model, including tfmot quantization-aware and pruned models.
        representative_data: Calibration data: numpy arrays, `(x, y)` tuples, dicts by input
            name, a `tf.data.Dataset` (batched or not), a generator or a `keras.utils.PyDataset`.
            Required for "int8", "int8_float_io" and "int16x8", except for a quantization-aware
            trained model, which converts with its learned ranges.
        quantization: One of "int8" (int8 inputs and outputs, int8 ops only: what TFLite Micro
            runs), "int8_float_io", "int16x8", "float16", "dynamic", "float32". Defaults to "int8".
        batch_size: The converted model's fixed batch dimension. Defaults to 1.
        num_calibration_samples: Samples drawn for calibration (samples, never batches), or
            "auto": grow from 500 until doubling moves no tensor's calibrated range by more than
            2%. A fixed size is checked against 4x as many samples and warned about when short.
            Defaults to 500.
        seed: Seed of the calibration draw. Defaults to 0.
        strategies: Strategy names to try, in order. Defaults to all, in preference order.
        timeout: Seconds one strategy may run before its worker is killed. Defaults to 600.

    Returns:
        A `ConversionResult`.

    Raises:
        ValueError: for a bad option, or data that does not match the model's inputs.
        ConversionError: when no strategy converts the model.

    Example:
    ```python
    result = keras_tflite.convert(model, x_train)
    result.save("model.tflite")
    print(result.strategy, result.ops)
    ```
    """
    check_mode(quantization)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive integer. Received: {batch_size!r}.")
    framework = framework_of(model)
    names = _strategies.plan(framework, strategies)
    calibration, inputs = prepare_inputs(
        model, representative_data, quantization, num_calibration_samples, seed
    )
    job_dir = Path(tempfile.mkdtemp(prefix="keras_tflite_job_"))
    try:
        _job.write(
            job_dir, model, inputs, calibration, quantization=quantization, batch_size=batch_size
        )
        tflite, attempts = run_job(job_dir, names, framework, timeout)
        facts = _worker.facts(job_dir)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return describe_result(
        tflite, attempts, model, inputs, calibration, quantization, seed, batch_size, facts
    )


def run_job(job_dir: Path, names: list[str], framework: str, timeout: float, on_events=None):
    """Runs the strategies on a written job; returns (flatbuffer, attempts)."""
    skipped, runnable = _skip_by_framework(names, framework)
    ran = _worker.run(job_dir, runnable, timeout=timeout, on_events=on_events) if runnable else []
    attempts = sorted(skipped + ran, key=lambda a: names.index(a.strategy))
    if not any(a.status == "converted" for a in attempts):
        raise ConversionError(_failure_message(attempts), attempts)
    return (job_dir / "model.tflite").read_bytes(), attempts


def describe_result(
    tflite, attempts, model, inputs, calibration, quantization, seed, batch_size, facts
):
    described_inputs, described_outputs = _describe(tflite, inputs, model)
    calibrated = calibrates(model, quantization)
    return ConversionResult(
        tflite=tflite,
        strategy=next(a.strategy for a in attempts if a.status == "converted"),
        ops=op_names(tflite),
        inputs=described_inputs,
        outputs=described_outputs,
        attempts=attempts,
        quantization=quantization,
        num_calibration_samples=calibration.num_samples if calibrated else 0,
        seed=seed,
        batch_size=batch_size,
        quantization_aware=_learned_ranges(model),
        sparsity=facts.get("sparsity", {}),
    )


def _learned_ranges(model: Any) -> bool:
    return _tfmot.QAT in _tfmot.optimizations(model)


def calibrates(model: Any, quantization: str) -> bool:
    """Whether the conversion calibrates int8 ranges on representative samples."""
    return quantization in CALIBRATED_MODES and not _learned_ranges(model)


def prepare_inputs(model, data, quantization, num_samples, seed):
    _tfmot.check_mode(model, quantization)
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
    pool_size = _sizing.AUTO_LIMIT if auto else num_samples * (4 if sized else 1)
    calibration = _calibration.collect(
        data, declared, num_samples=pool_size, seed=seed, calibrates=calibrated
    )
    if sized:
        calibration = _sized(model, calibration, [i.name for i in declared], num_samples)
    inputs = declared or _calibration.model_inputs(calibration)
    unknown = [i.name for i in inputs if None in i.shape]
    if unknown and declared is not None:
        inputs = [TensorInfo(i.name, calibration.arrays[i.name].shape[1:], i.dtype) for i in inputs]
    _calibration.check_dtypes(calibration, inputs, "representative_data")
    return calibration, inputs


def _check_num_samples(num_samples: Any) -> None:
    if num_samples == "auto":
        return
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(
            "Expected num_calibration_samples to be a positive integer (a count of samples, not "
            f'batches) or "auto". Received: {num_samples!r}.'
        )


def _sized(model: Any, pool, names: list[str], num_samples: int | str):
    """The calibration subset: auto-sized, or the fixed size checked against a 4x larger draw."""
    pool, shortfall = _sizing.shuffled(pool), None
    if num_samples == "auto":
        size = _sizing.auto_size(model, pool, names).size
    else:
        size = min(num_samples, pool.num_samples)
        shortfall = _sizing.check_fixed_size(model, pool, names, size)
    chosen = _sizing.prefix(pool, size)
    chosen.shortfall = pool.shortfall or shortfall
    return chosen


def _skip_by_framework(names: list[str], framework: str) -> tuple[list[Attempt], list[str]]:
    skipped, runnable = [], []
    for name in names:
        reason = _strategies.framework_skip_reason(_strategies.STRATEGIES[name], framework)
        if reason:
            skipped.append(Attempt(name, "skipped", reason))
        else:
            runnable.append(name)
    return skipped, runnable


def _failure_message(attempts: list[Attempt]) -> str:
    lines = [f"  {a.strategy}: {a.status}{' - ' + a.reason if a.reason else ''}" for a in attempts]
    return "No conversion strategy converted the model:\n" + "\n".join(lines)


def _describe(tflite: bytes, inputs: list[TensorInfo], model: Any):
    """The converted inputs and outputs in the flatbuffer's order, which the worker made the
    model's own (`_flatbuffer.with_model_io`), under the model's names."""
    return io_details(tflite)
