"""One model, many exports: prepared once at train begin, then a weights snapshot per export."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import _calibration, _job, _lambdas, _strategies, _worker
from keras_tflite._convert import (
    ConversionResult,
    calibrates,
    describe_result,
    prepare_inputs,
    run_job,
)
from keras_tflite._fidelity import fidelity
from keras_tflite._specs import framework_of

DEFAULT_VALIDATION_SAMPLES = 256


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


@dataclasses.dataclass
class Validation:
    inputs: dict[str, np.ndarray]
    targets: list[np.ndarray] | None


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
        num_calibration_samples: int,
        seed: int,
        strategies: list[str] | None,
        timeout: float,
        niceness: int = 0,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        layer_errors: bool = False,
        owns_model: bool = False,
    ):
        self.layer_errors = layer_errors
        # A private copy of the model (distributed training): export() may load weights into it.
        self.owns_model = owns_model
        self.framework = framework_of(model)
        _lambdas.environment(model)  # a Lambda the worker cannot rebuild is refused now
        self.trained_on = _trained_on(model)
        self.niceness = niceness
        self.strategies = _strategies.plan(self.framework, strategies)
        self.quantization, self.batch_size, self.seed = quantization, batch_size, seed
        self.timeout = timeout
        self.calibration, self.inputs = prepare_inputs(
            model, representative_data, quantization, num_calibration_samples, seed
        )
        self.num_validation_samples = num_validation_samples
        if representative_data is None and validation_data is None:
            raise ValueError(
                "Expected validation_data (or representative_data) to judge each export on. "
                "Received: neither."
            )
        self.validation = self._validation(
            representative_data if validation_data is None else validation_data, seed
        )
        calibrated = calibrates(model, quantization)
        gap = calibrated and _calibration.coverage_gap(self.calibration, self.validation.inputs)
        if gap and not self.calibration.shortfall:
            self.calibration.shortfall = gap
            import warnings

            warnings.warn(
                f"representative_data may not represent the data: {gap}. Pass samples that "
                "cover the inputs the model will see.",
                stacklevel=3,
            )
        self._work = Path(tempfile.mkdtemp(prefix="keras_tflite_export_"))
        self._model = model
        self.model_file = _job.save_model(model, self._work)

    def _validation(self, data: Any, seed: int) -> Validation:
        pairs = _pairs(data, self.inputs)
        rng = np.random.default_rng(seed + 1)
        chosen = sorted(
            rng.choice(len(pairs), min(len(pairs), self.num_validation_samples), replace=False)
        )
        inputs = {i.name: np.stack([pairs[c][0][i.name] for c in chosen]) for i in self.inputs}
        for info in self.inputs:
            shape = inputs[info.name].shape[1:]
            if len(shape) != len(info.shape) or any(
                d is not None and d != s for d, s in zip(info.shape, shape)
            ):
                raise ValueError(
                    f"Expected validation_data input '{info.name}' with per-sample shape "
                    f"{tuple(info.shape)}. Received: samples of shape {tuple(shape)}."
                )
        if any(p[1] is None for p in pairs):
            return Validation(inputs, None)
        targets = [np.stack([pairs[c][1][k] for c in chosen]) for k in range(len(pairs[0][1]))]
        return Validation(inputs, targets)

    def float_reference(self, model: Any) -> list[np.ndarray] | None:
        """The float outputs on the validation inputs, when only this process can compute them.

        A model trained on JAX or torch is rebuilt on TensorFlow to convert: its int8 model is
        judged against its own backend's outputs, computed here from the current weights.
        """
        import keras

        if self.framework != "keras" or keras.backend.backend() == "tensorflow":
            return None
        arrays = [self.validation.inputs[i.name] for i in self.inputs]
        outputs = model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0)
        return [np.asarray(o) for o in _job._flat(outputs)]

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
            _job.write(
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
            tflite, attempts = run_job(job_dir, self.strategies, self.framework, self.timeout)
            facts = _worker.facts(job_dir)
            result = describe_result(
                tflite,
                attempts,
                self._model,
                self.inputs,
                self.calibration,
                self.quantization,
                self.seed,
                self.batch_size,
                facts,
            )
            return read_judged(job_dir, result, began)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            return Judged(None, {}, [], [], None, f"{type(error).__name__}: {error}", _since(began))
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self._work, ignore_errors=True)


def read_judged(job_dir: Path, result: ConversionResult, began: float) -> Judged:
    """The worker's judgement of `result`: runtime outputs against float, and their metrics."""
    events = [
        json.loads(x)
        for x in (job_dir / "progress.jsonl").read_text().splitlines()
        if x.endswith("}")
    ]
    report = next((e["judged"] for e in events if "judged" in e), None)
    if report is None:
        message = "judging crashed the worker (LiteRT or TFLite Micro)"
        return Judged(result, {}, [], [], None, message, _since(began))
    with np.load(job_dir / "judged.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    count = len(result.outputs)
    expected = [arrays[f"float_{i}"] for i in range(count)]
    litert = [arrays[f"litert_{i}"] for i in range(count)]
    metrics = {f"litert_{k}_vs_float": v for k, v in fidelity(expected, litert).items()}
    micro_error = report.get("micro_error")
    micro = []
    if micro_error is None:
        micro = [arrays[f"micro_{i}"] for i in range(count)]
        metrics |= {f"{k}_vs_float": v for k, v in fidelity(expected, micro).items()}
        metrics["litert_max_lsb_vs_micro"] = _max_lsb(result, litert, micro)
        metrics["arena_bytes"] = float(report["arena_bytes"])
    metrics["model_bytes"] = float(result.size)
    if "rebuild_max_abs_diff" in report:  # the TensorFlow rebuild against the training backend
        metrics["rebuild_max_abs_diff"] = report["rebuild_max_abs_diff"]
    layers = next((e["layers"] for e in events if "layers" in e), None)
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


def _pairs(data: Any, inputs) -> list[tuple[dict, list | None]]:
    """(inputs by name, targets) per sample, from (x, y) arrays, datasets or generators."""
    in_memory = _calibration._as_arrays(data)
    elements = [data] if in_memory is not None else _calibration._elements(data, "validation_data")
    pairs = []
    for element in itertools.islice(elements, _calibration.MAX_SCANNED_SAMPLES):
        x = _calibration._features(element)
        y = element[1] if isinstance(element, tuple) and len(element) in (2, 3) else None
        named = {
            n: _calibration._numpy(v)
            for n, v in _calibration._by_name(x, inputs, "validation_data").items()
        }
        targets = (
            None
            if y is None
            else [_calibration._numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y])]
        )
        batched = in_memory is not None or _calibration._is_batched(
            named, inputs, len(pairs), "validation_data"
        )
        if not batched:
            pairs.append((named, targets))
            continue
        for i in range(len(next(iter(named.values())))):
            pairs.append(
                (
                    {n: a[i] for n, a in named.items()},
                    None if targets is None else [t[i] for t in targets],
                )
            )
    if not pairs:
        raise ValueError(
            "Expected validation_data to hold at least one sample. Received: no samples."
        )
    return pairs


def _trained_on(model: Any) -> str:
    """ "tf_keras", or "keras (BACKEND)" for Keras 3."""
    if framework_of(model) == "tf_keras":
        return "tf_keras"
    import keras

    return f"keras ({keras.backend.backend()})"


def _since(began: float) -> float:
    return round(time.perf_counter() - began, 2)
