"""The worker converts: a strategy's converter, configured for the quantization mode, calibrated
on the job's samples, checked against the model, and the result named as the model is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.quantization import configure
from keras_tflite.runtime.flatbuffer import with_model_io
from keras_tflite.specs import TensorInfo, flat, framework_of, output_names
from keras_tflite.worker import protocol, strategies, tfmot
from keras_tflite.worker.protocol import Job

# The traced graph must reproduce the model before it is converted (the RNN bridge swaps kernels).
_TRACE_TOLERANCE = 1e-4
_TRACE_CHECK_SAMPLES = 4


def skip_reason(name: str, model: Any) -> str | None:
    strategy = strategies.STRATEGIES[name]
    framework = framework_of(model)
    return strategies.framework_skip_reason(strategy, framework) or strategy.skip_reason(model)


def convert_with(name: str, model: Any, job_dir: Path, job: Job) -> bytes:
    """The converted flatbuffer, its inputs and outputs in the model's order and names."""
    converter, _ = _configured_converter(name, model, job_dir, job)
    with strategies.quiet_tensorflow():
        tflite = converter.convert()
    inputs = [i["name"] for i in job.inputs]
    return with_model_io(tflite, inputs, output_names(model, _output_count(tflite)))


def _output_count(tflite: bytes) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return schema.Model.GetRootAs(tflite, 0).Subgraphs(0).OutputsLength()


def _configured_converter(name: str, model: Any, job_dir: Path, job: Job):
    """The strategy's converter, configured for the job's quantization; and the calibration
    batches."""
    strategy = strategies.STRATEGIES[name]
    inputs = [TensorInfo.from_json(i) for i in job.inputs]
    stored = protocol.read_arrays(job_dir / protocol.CALIBRATION_FILE)
    arrays = {info.name: stored[info.name] for info in inputs}
    batches = list(_batches(arrays, job.batch_size))

    def check(traced) -> None:
        _check_trace(traced, model, inputs, batches[:_TRACE_CHECK_SAMPLES])

    scratch = job_dir / "scratch"  # files a converter reads lazily; removed with the job
    scratch.mkdir(exist_ok=True)
    converter = strategy.build(model, inputs, job.batch_size, check, scratch)

    def representative_dataset():  # batches keyed by input name: signatures may reorder inputs
        every = max(1, len(batches) // 20)
        for done, batch in enumerate(batches, 1):
            if getattr(model, "positional_calibration", False):
                yield [batch[i.name] for i in inputs]
            else:
                yield batch
            if done % every == 0 or done == len(batches):
                protocol.progress(job_dir, "calibrating", done, len(batches))

    learned = tfmot.QAT in job.optimizations  # quantization-aware training set the ranges
    configure(converter, job.quantization, None if learned else representative_dataset)
    return converter, batches


LAYER_ERROR_ROWS = 10
_LAYER_ERROR_BATCHES = 64


def layer_errors(name: str, model: Any, job_dir: Path, job: Job) -> list[dict[str, Any]]:
    """Per-layer int8 error (TFLite's QuantizationDebugger), the largest first.

    Each row: the layer's output tensor, its RMSE and max abs error against the float layer,
    and that RMSE relative to the layer's own float spread (so layers compare fairly).
    """
    import tensorflow as tf

    converter, batches = _configured_converter(name, model, job_dir, job)
    inputs = [TensorInfo.from_json(i) for i in job.inputs]

    def debug_dataset():  # the debugger feeds inputs by position
        for batch in batches[:_LAYER_ERROR_BATCHES]:
            yield [batch[i.name] for i in inputs]

    with strategies.quiet_tensorflow():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=debug_dataset
        )
        debugger.run()
    rows = []
    for tensor, stats in debugger.layer_statistics.items():
        rmse = float(np.sqrt(stats["mean_squared_error"]))
        rows.append(
            {
                "layer": _layer_name(tensor),
                "rmse": rmse,
                "max_abs_error": float(stats["max_abs_error"]),
                "mean_error": float(stats["mean_error"]),
            }
        )
    return sorted(rows, key=lambda r: r["rmse"], reverse=True)[:LAYER_ERROR_ROWS]


def _layer_name(tensor: str) -> str:
    """'NumericVerify/functional_1/dense_1/MatMul21:22' -> 'functional_1/dense_1/MatMul21'."""
    return tensor.removeprefix("NumericVerify/").rsplit(":", 1)[0]


def _batches(arrays: dict[str, np.ndarray], batch_size: int):
    count = len(next(iter(arrays.values())))
    usable = max(count - count % batch_size, batch_size)
    order = np.arange(usable) % count
    for start in range(0, usable, batch_size):
        rows = order[start : start + batch_size]
        yield {name: a[rows] for name, a in arrays.items()}


def _check_trace(traced, model, inputs: list[TensorInfo], batches) -> None:
    for batch in batches:
        args = [batch[i.name] for i in inputs]
        got = flat(traced(*args))
        expected = flat(model(args[0] if len(args) == 1 else args, training=False))
        for g, e in zip(got, expected):
            diff = float(np.max(np.abs(g - e)))
            if diff > _TRACE_TOLERANCE * (1.0 + float(np.max(np.abs(e)))):
                raise ValueError(
                    f"the traced graph does not reproduce the model (max abs difference {diff:.3g})"
                )
