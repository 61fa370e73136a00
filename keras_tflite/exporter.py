"""One model, many exports: prepared once at train begin, then a weights snapshot per export."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import jobs
from keras_tflite.conversion import ConversionResult, result_of, run_job
from keras_tflite.data.calibration import coverage_gap
from keras_tflite.data.prepare import calibration_samples
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES, validation_samples
from keras_tflite.quantization import calibrates
from keras_tflite.runtime.fidelity import fidelity
from keras_tflite.specs import flat, framework_of
from keras_tflite.worker import lambdas, protocol, supervisor
from keras_tflite.worker import strategies as strategy_catalog
from keras_tflite.worker.protocol import Event

__all__ = ["DEFAULT_VALIDATION_SAMPLES", "Exporter", "Judged", "read_judged"]


@dataclasses.dataclass
class Judged:
    """An export's outcome: the converted model, its outputs on validation data, and metrics.

    `metrics` keys without a prefix are TFLite Micro's (what the microcontroller computes, which
    decides); `litert_*` keys are LiteRT's (the desktop runtime), reported beside them.
    """

    result: ConversionResult | None
    metrics: dict[str, float]
    litert_outputs: list[np.ndarray]
    float_outputs: list[np.ndarray]
    micro_error: str | None
    error: str | None
    seconds: float
    micro_outputs: list[np.ndarray] = dataclasses.field(default_factory=list)
    layer_errors: list[dict[str, Any]] | None = None


class Exporter:
    """Holds what every export of one model shares: its architecture file, calibration and
    validation samples. `export(weights)` converts and judges one snapshot in a worker process."""

    def __init__(
        self,
        model: Any,
        representative_data: Any,
        validation_data: Any,
        *,
        quantization: str,
        batch_size: int,
        num_calibration_samples: int | str,
        seed: int,
        strategies: list[str] | None,
        timeout: float,
        niceness: int = 0,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        layer_errors: bool = False,
        owns_model: bool = False,
    ):
        if representative_data is None and validation_data is None:
            raise ValueError(
                "Expected validation_data (or representative_data) to judge each export on. "
                "Received: neither."
            )
        self.layer_errors = layer_errors
        # A private copy of the model (distributed training): export() may load weights into it.
        self.owns_model = owns_model
        self.framework = framework_of(model)
        lambdas.environment(model)  # a Lambda the worker cannot rebuild is refused now
        self.trained_on = _trained_on(model)
        self.niceness = niceness
        self.strategies = strategy_catalog.plan(self.framework, strategies)
        self.quantization, self.batch_size, self.seed = quantization, batch_size, seed
        self.timeout = timeout
        self.calibration, self.inputs = calibration_samples(
            model, representative_data, quantization, num_calibration_samples, seed
        )
        judged_on = representative_data if validation_data is None else validation_data
        self.validation = validation_samples(judged_on, self.inputs, num_validation_samples, seed)
        gap = calibrates(model, quantization) and coverage_gap(
            self.calibration, self.validation.inputs
        )
        if gap and not self.calibration.shortfall:
            self.calibration.shortfall = gap
            warnings.warn(
                f"representative_data may not represent the data: {gap}. Pass samples that "
                "cover the inputs the model will see.",
                stacklevel=3,
            )
        self._work = Path(tempfile.mkdtemp(prefix="keras_tflite_export_"))
        self._model = model
        self.model_file = jobs.save_model(model, self._work)
        # One worker for the whole fit: TensorFlow imported and the model rebuilt once.
        self.worker = supervisor.Worker(niceness=niceness)

    def float_reference(self, model: Any) -> list[np.ndarray] | None:
        """The float outputs on the validation inputs, when only this process can compute them.

        A model trained on JAX or torch is rebuilt on TensorFlow to convert: its int8 model is
        judged against its own backend's outputs, computed here from the current weights.
        """
        import keras

        if self.framework != "keras" or keras.backend.backend() == "tensorflow":
            return None
        arrays = [self.validation.inputs[i.name] for i in self.inputs]
        return flat(model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0))

    def export(
        self, weights: list[np.ndarray], reference: list[np.ndarray] | None = None
    ) -> Judged:
        """Converts and judges one weights snapshot; `reference` is `float_reference`'s."""
        began = time.perf_counter()
        if reference is None and self.owns_model:
            self._model.set_weights(weights)
            reference = self.float_reference(self._model)
        job_dir = Path(tempfile.mkdtemp(prefix="job_", dir=self._work))
        try:
            jobs.write(
                job_dir,
                self._model,
                self.inputs,
                self.calibration,
                quantization=self.quantization,
                batch_size=self.batch_size,
                model_file=self.model_file,
                weights=weights,
                validation=self.validation.inputs,
                reference=reference,
                niceness=self.niceness,
                layer_errors=self.layer_errors,
            )
            tflite, attempts = run_job(
                job_dir, self.strategies, self.framework, self.timeout, worker=self.worker
            )
            result = result_of(
                tflite,
                attempts,
                self._model,
                self.calibration,
                self.quantization,
                self.seed,
                self.batch_size,
                supervisor.facts(job_dir),
            )
            return read_judged(job_dir, result, began)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            return Judged(None, {}, [], [], None, f"{type(error).__name__}: {error}", _since(began))
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def close(self) -> None:
        self.worker.close()
        shutil.rmtree(self._work, ignore_errors=True)


def read_judged(job_dir: Path, result: ConversionResult, began: float) -> Judged:
    """The worker's judgement of `result`: runtime outputs against float, and their metrics."""
    events = protocol.read_events(job_dir)
    report = protocol.first(events, Event.JUDGED)
    if report is None:
        message = "judging crashed the worker (LiteRT or TFLite Micro)"
        return Judged(result, {}, [], [], None, message, _since(began))
    arrays = protocol.read_judged(job_dir)
    expected, litert = arrays.expected, arrays.litert
    metrics = {f"litert_{k}_vs_float": v for k, v in fidelity(expected, litert).items()}
    micro_error = report.get("micro_error")
    micro = arrays.micro or []
    if micro_error is None:
        metrics |= {f"{k}_vs_float": v for k, v in fidelity(expected, micro).items()}
        metrics["litert_max_lsb_vs_micro"] = _max_lsb(result, litert, micro)
        metrics["arena_bytes"] = float(report["arena_bytes"])
    metrics["model_bytes"] = float(result.size)
    if "rebuild_max_abs_diff" in report:  # the TensorFlow rebuild against the training backend
        metrics["rebuild_max_abs_diff"] = report["rebuild_max_abs_diff"]
    layers = protocol.first(events, Event.LAYERS)
    return Judged(
        result, metrics, litert, expected, micro_error, None, _since(began), micro, layers
    )


def _max_lsb(result: ConversionResult, litert: list[np.ndarray], micro: list[np.ndarray]) -> float:
    """Largest output difference between the runtimes, in steps of each output's int8 scale."""
    steps = [
        np.max(np.abs(a - b)) / t.scale if t.scale else np.max(np.abs(a - b))
        for t, a, b in zip(result.outputs, litert, micro)
    ]
    return float(np.round(max(steps), 3))


def _trained_on(model: Any) -> str:
    """ "tf_keras", or "keras (BACKEND)" for Keras 3."""
    if framework_of(model) == "tf_keras":
        return "tf_keras"
    import keras

    return f"keras ({keras.backend.backend()})"


def _since(began: float) -> float:
    return round(time.perf_counter() - began, 2)
