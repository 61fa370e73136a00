"""Jobs for the conversion worker, written from a live model: the caller's half of `protocol`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import compat, qat
from keras_tflite.data.calibration import Calibration
from keras_tflite.specs import TensorInfo, framework_of, walk_layers
from keras_tflite.worker import lambdas, protocol


def write(
    job_dir: Path,
    model: Any,
    inputs: list[TensorInfo],
    calibration: Calibration,
    *,
    quantization: str,
    batch_size: int,
    model_file: Path | None = None,
    weights: list[np.ndarray] | None = None,
    validation: dict[str, np.ndarray] | None = None,
    reference: list[np.ndarray] | None = None,
    niceness: int = 0,
    layer_errors: bool = False,
    requantize: bool = False,
    candidate: bytes | None = None,
) -> None:
    """Writes everything the worker needs; the caller's model is only read.

    `model_file` reuses a file `save_model` wrote earlier (its architecture), `weights` then
    replaces its weights (a training snapshot), and `validation` asks the worker to judge the
    result; `reference` holds the float outputs on it when the model trains on another backend
    than TensorFlow (the worker rebuilds it on TensorFlow, so it cannot compute them itself).
    `requantize` lets the worker re-quantize the snapshot in the fit's template; `candidate`, a
    re-quantized flatbuffer, asks it to convert in full and compare.
    """
    model_key = None if model_file is None else str(model_file)  # the worker keeps it loaded
    if model_file is None:
        model_file = save_model(model, job_dir)
    else:
        os.link(model_file, job_dir / model_file.name)
    protocol.write_arrays(job_dir / protocol.CALIBRATION_FILE, calibration.arrays)
    for name, arrays in (
        (protocol.WEIGHTS_FILE, weights),
        (protocol.VALIDATION_FILE, validation),
        (protocol.REFERENCE_FILE, reference),
    ):
        if arrays is not None:
            protocol.write_arrays(job_dir / name, arrays)
    if candidate is not None:
        (job_dir / protocol.CANDIDATE_FILE).write_bytes(candidate)
    protocol.Job(
        framework=framework_of(model),
        inputs=[i.to_json() for i in inputs],
        quantization=quantization,
        batch_size=batch_size,
        model_file=model_file.name,
        model_key=model_key,
        imports=sorted(_custom_modules(model)),
        sys_path=[p for p in sys.path if p],
        optimizations=qat.optimizations(model),
        lambda_globals=lambdas.environment(model),
        niceness=niceness,
        layer_errors=layer_errors,
        requantize=requantize,
        verify=candidate is not None,
    ).write(job_dir)


def save_model(model: Any, directory: Path) -> Path:
    """Saves the model for the worker: `.keras`, or `.h5` for tfmot's wrappers (the `.keras`
    format drops variables of tfmot's QuantizeLayer; measured)."""
    if not qat.optimizations(model):
        path = directory / "model.keras"
        model.save(path)
        return path
    path = directory / "model.h5"
    compat.save_h5(model, str(path))  # not `model.save`: it would change "accuracy"
    return path


def _custom_modules(model: Any) -> set[str]:
    """Modules defining the model's own classes, imported by the worker so Keras can find them."""
    modules = set()
    for layer in walk_layers(model):
        module = type(layer).__module__
        if not module.startswith(("keras.", "tf_keras.")) and module != "__main__":
            modules.add(module)
    return modules
