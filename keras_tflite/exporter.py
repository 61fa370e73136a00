"""One model, many exports: prepared once at train begin, then a weights snapshot per export."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import caller, jobs
from keras_tflite.board import Board
from keras_tflite.conversion import DEFAULT_TIMEOUT, ConversionResult, result_of, run_job
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES, coverage_gap
from keras_tflite.data.prepare import calibration_samples
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES, validation_samples
from keras_tflite.deploy import artifacts
from keras_tflite.judged import Judged, read_judged, since
from keras_tflite.quantization import calibrates
from keras_tflite.specs import flat, framework_of
from keras_tflite.worker import lambdas, protocol, supervisor
from keras_tflite.worker import strategies as strategy_catalog
from keras_tflite.worker.protocol import Event
from keras_tflite.worker.streaming import StepModel

__all__ = ["DEFAULT_VALIDATION_SAMPLES", "Exporter", "Judged", "read_judged"]


class Exporter:
    """Holds what every export of one model shares: its architecture file, calibration and
    validation samples. `export(weights)` converts and judges one snapshot in a worker process."""

    def __init__(
        self,
        model: Any,
        representative_data: Any,
        validation_data: Any,
        *,
        quantization: str = "int8",
        batch_size: int = 1,
        num_calibration_samples: int | str = DEFAULT_NUM_SAMPLES,
        seed: int = 0,
        strategies: list[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        niceness: int = 0,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        layer_errors: bool = False,
        owns_model: bool = False,
        streaming: bool = False,
        board: Board = Board(),
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
        self.streaming = streaming
        self.board = board  # the arena and instructions reported are this board's
        self._stream_failure: str | None = None
        if streaming:
            StepModel(model, self.inputs)  # a model with no streaming form: refused now
        judged_on = representative_data if validation_data is None else validation_data
        self.validation = validation_samples(judged_on, self.inputs, num_validation_samples, seed)
        gap = calibrates(model, quantization) and coverage_gap(
            self.calibration, self.validation.inputs
        )
        if gap and not self.calibration.shortfall:
            self.calibration.shortfall = gap
            caller.warn(
                f"representative_data may not represent the data: {gap}. Pass samples that "
                "cover the inputs the model will see."
            )
        self._work = Path(tempfile.mkdtemp(prefix="keras_tflite_export_"))
        self._model = model
        self.model_file = jobs.save_model(model, self._work)
        # One worker for the whole fit: TensorFlow imported and the model rebuilt once.
        self.worker = supervisor.Worker(niceness=niceness)
        self.worker.start()  # it imports TensorFlow while training runs toward the first export
        # Calibrated snapshots re-quantize the fit's first conversion (worker/requantize.py).
        self.requantize = calibrates(model, quantization)
        self._told: set[str] = set()

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
        """Converts (or re-quantizes) and judges one weights snapshot; `reference` is
        `float_reference`'s. With `streaming`, its one-step form too (`judged.stream`)."""
        judged = self._run(weights, reference, self.strategies)
        if self.streaming and judged.result is not None:
            judged.stream = self._run(weights, reference, [strategy_catalog.STREAMING])
            self._give_up_streaming_after_repeats(judged.stream)
        return judged

    def _give_up_streaming_after_repeats(self, stream: Judged) -> None:
        """The same streaming failure twice: later exports skip the streaming form (each
        attempt would cost up to a strategy's timeout), with a warning that says why."""
        if stream.result is not None:
            return
        if stream.error != self._stream_failure:
            self._stream_failure = stream.error
            return
        self.streaming = False
        caller.warn(
            f"TFLiteExportCallback stops exporting the streaming model: it failed twice with "
            f"{stream.error}"
        )

    def verify(
        self, weights: list[np.ndarray], judged: Judged, reference: list[np.ndarray] | None = None
    ) -> Judged:
        """A re-quantized export checked against a full conversion of the same weights: `judged`
        itself when they match, else the full conversion, judged (and the fit converts in full
        from now on, with a warning that says why)."""
        result = judged.result
        full = self._run(weights, reference, [result.strategy], candidate=result.tflite)
        report = full.verification
        if full.result is None or report is None:  # the check itself failed: not claimed
            result.verified = f"not verified: {full.error or 'the full conversion failed'}"
            return judged
        if report["difference"] is None:
            result.verified = (
                "identical bytes"
                if report["identical"]
                else "identical outputs in LiteRT and TFLite Micro (the converter laid out the "
                "flatbuffer differently)"
            )
            return judged
        why = f"a re-quantized export differed from its full conversion ({report['difference']})"
        full.result.full_conversion_note = why
        caller.warn(
            f"TFLiteExportCallback: {why}; this export and every later one are converted in full."
        )
        return full

    def _run(self, weights, reference, strategies, candidate: bytes | None = None) -> Judged:
        layer_errors = self.layer_errors and strategies != [strategy_catalog.STREAMING]
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
                layer_errors=layer_errors,
                requantize=self.requantize,
                candidate=candidate,
            )
            tflite, attempts = run_job(
                job_dir, strategies, self.framework, self.timeout, worker=self.worker
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
            self._learn_path(job_dir, result)
            return read_judged(job_dir, result, began, self.board)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            return Judged(None, {}, [], [], None, self._failure(error), since(began))
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def _failure(self, error: Exception) -> str:
        """Why the export produced nothing, in words when a full disk is the reason."""
        if artifacts.disk_full(error):
            return (
                f"the disk holding the temporary folder {self._work.parent} is full: the "
                "export's job files do not fit (free space there, or point TMPDIR at a larger "
                "disk); exports resume by themselves once they fit"
            )
        return f"{type(error).__name__}: {error}"

    def _learn_path(self, job_dir: Path, result: ConversionResult) -> None:
        """Notes how the worker converted: strategies that failed on this model (an error, not a
        crash) are tried after the one that converted from now on, and a reason to convert in
        full is told once."""
        failed = {a.strategy for a in result.attempts if a.status in ("failed", "skipped")}
        self.strategies = [s for s in self.strategies if s not in failed] + [
            s for s in self.strategies if s in failed
        ]
        path = protocol.first(protocol.read_events(job_dir), Event.PATH, {})
        result.path = path.get("path", result.path)
        note = path.get("note")
        if note:
            result.full_conversion_note = note  # in this export's manifest
        if note and note not in self._told:
            self._told.add(note)
            caller.warn(
                f"TFLiteExportCallback converts this export in full instead of re-quantizing "
                f"the fit's first conversion: {note}."
            )

    def close(self) -> None:
        self.worker.close()
        shutil.rmtree(self._work, ignore_errors=True)


def _trained_on(model: Any) -> str:
    """ "tf_keras", or "keras (BACKEND)" for Keras 3."""
    if framework_of(model) == "tf_keras":
        return "tf_keras"
    import keras

    return f"keras ({keras.backend.backend()})"
