"""`convert()`: a Keras 3 or tf_keras model to a TFLite flatbuffer, in an isolated worker."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from keras_tflite import jobs, qat
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.data.prepare import calibration_samples
from keras_tflite.deploy.artifacts import atomic_write
from keras_tflite.quantization import calibrates, check_mode
from keras_tflite.runtime.inspect import QuantizedTensor, io_details, op_names
from keras_tflite.specs import framework_of, input_infos
from keras_tflite.worker import protocol, shared, supervisor
from keras_tflite.worker import strategies as strategy_catalog
from keras_tflite.worker.protocol import Attempt
from keras_tflite.worker.streaming import StepModel

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
        path: "converted" (in full) or "requantized" (a training snapshot's weights put into
            the fit's first conversion and calibrated again: what a full conversion gives).
        verified: How the model was checked: "converted in full" (nothing to check), or for a
            re-quantized export, how it matched its full conversion.
        full_conversion_note: Why a fit's export was converted in full instead of re-quantized.
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
    path: str = "converted"
    verified: str | None = None
    full_conversion_note: str | None = None

    @property
    def size(self) -> int:
        return len(self.tflite)

    def describe(self) -> dict[str, Any]:
        """How the model was made, as JSON: what manifests and the CLI's reports start with."""
        ranges = (
            "learned (quantization-aware training)" if self.quantization_aware else "calibrated"
        )
        return {
            "quantization": self.quantization,
            "strategy": self.strategy,
            "ops": self.ops,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "attempts": [a.to_json() for a in self.attempts],
            "calibration": {
                "samples": self.num_calibration_samples,
                "seed": self.seed,
                "ranges": ranges,
            },
            "model_bytes": self.size,
            "path": self.path,
            "verified": self.verified
            or (
                "converted in full"
                if self.path == "converted"
                else "not checked against a full conversion (new bests are)"
            ),
        }

    def save(self, path: str | Path) -> Path:
        """Writes the flatbuffer to `path` atomically (a crash never leaves a partial file) and
        returns it."""
        path = Path(path)
        atomic_write(path, self.tflite)
        return path


def convert(
    model: Any,
    representative_data: Any = None,
    *,
    quantization: str = "int8",
    batch_size: int = 1,
    num_calibration_samples: int | str = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    strategies: list[str] | None = None,
    streaming: bool = False,
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
        streaming: Convert the one-step form of a recurrent model instead: its inputs are one
            time step (batch 1) and the recurrent state, its outputs the model's output at that
            step and the next state; run it with `StreamingModel`. For a chain of per-step
            layers, LSTM/GRU/SimpleRNN layers and a head; `representative_data` holds whole
            sequences, stepped through to calibrate the state. Defaults to False.
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
    if streaming:
        StepModel(model, input_infos(model) or [])  # a model with no streaming form: refused now
        strategies = [strategy_catalog.STREAMING]
    names = strategy_catalog.plan(framework, strategies)
    job_dir = Path(tempfile.mkdtemp(prefix="keras_tflite_job_"))
    worker = shared.take()  # it imports TensorFlow (once) while the samples are prepared here
    try:
        calibration, inputs = calibration_samples(
            model, representative_data, quantization, num_calibration_samples, seed
        )
        jobs.write(
            job_dir, model, inputs, calibration, quantization=quantization, batch_size=batch_size
        )
        tflite, attempts = run_job(job_dir, names, framework, timeout, worker=worker)
        facts = supervisor.facts(job_dir)
    finally:
        shared.give_back()
        shutil.rmtree(job_dir, ignore_errors=True)
    return result_of(tflite, attempts, model, calibration, quantization, seed, batch_size, facts)


def run_job(
    job_dir: Path,
    names: list[str],
    framework: str,
    timeout: float,
    on_events=None,
    worker: supervisor.Worker | None = None,
):
    """Runs the strategies on a written job, in `worker` (else a worker of its own); returns
    (flatbuffer, attempts)."""
    skipped, runnable = _skip_by_framework(names, framework)
    ran = []
    if runnable:
        ran = supervisor.run(job_dir, runnable, timeout=timeout, on_events=on_events, worker=worker)
    attempts = sorted(skipped + ran, key=lambda a: names.index(a.strategy))
    if not any(a.status == "converted" for a in attempts):
        raise ConversionError(_failure_message(attempts), attempts)
    return (job_dir / protocol.MODEL_FILE).read_bytes(), attempts


def describe_result(
    tflite: bytes,
    attempts: list[Attempt],
    *,
    quantization: str,
    num_calibration_samples: int,
    seed: int,
    batch_size: int,
    facts: dict[str, Any],
    quantization_aware: bool = False,
) -> ConversionResult:
    """The `ConversionResult` of converted bytes: inputs and outputs in the flatbuffer's order,
    which the worker made the model's own (`runtime.flatbuffer.with_model_io`)."""
    inputs, outputs = io_details(tflite)
    return ConversionResult(
        tflite=tflite,
        strategy=next(a.strategy for a in attempts if a.status == "converted"),
        ops=op_names(tflite),
        inputs=inputs,
        outputs=outputs,
        attempts=attempts,
        quantization=quantization,
        num_calibration_samples=num_calibration_samples,
        seed=seed,
        batch_size=batch_size,
        quantization_aware=quantization_aware,
        sparsity=facts.get("sparsity", {}),
    )


def result_of(tflite, attempts, model, calibration, quantization, seed, batch_size, facts):
    """`describe_result` for a live model and the calibration samples it was converted with."""
    return describe_result(
        tflite,
        attempts,
        quantization=quantization,
        num_calibration_samples=calibration.num_samples if calibrates(model, quantization) else 0,
        seed=seed,
        batch_size=batch_size,
        facts=facts,
        quantization_aware=qat.QAT in qat.optimizations(model),
    )


def _skip_by_framework(names: list[str], framework: str) -> tuple[list[Attempt], list[str]]:
    skipped, runnable = [], []
    for name in names:
        reason = strategy_catalog.framework_skip_reason(
            strategy_catalog.STRATEGIES[name], framework
        )
        if reason:
            skipped.append(Attempt(name, "skipped", reason))
        else:
            runnable.append(name)
    return skipped, runnable


def _failure_message(attempts: list[Attempt]) -> str:
    lines = [f"  {a.strategy}: {a.status}{' - ' + a.reason if a.reason else ''}" for a in attempts]
    return "No conversion strategy converted the model:\n" + "\n".join(lines)
