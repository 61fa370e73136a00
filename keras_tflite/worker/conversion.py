"""The worker converts: a strategy's converter, configured for the quantization mode, calibrated
on the job's samples, checked against the model, and the result named as the model is."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.quantization import configure
from keras_tflite.runtime.flatbuffer import with_model_io, with_shared_state_scales
from keras_tflite.specs import TensorInfo, flat, framework_of, output_names
from keras_tflite.worker import protocol, requantize, strategies, streaming, tfmot
from keras_tflite.worker.protocol import Job

# The traced graph must reproduce the model before it is converted (the RNN bridge swaps kernels).
_TRACE_TOLERANCE = 1e-4
_TRACE_CHECK_SAMPLES = 4


def skip_reason(name: str, model: Any) -> str | None:
    strategy = strategies.STRATEGIES[name]
    framework = framework_of(model)
    return strategies.framework_skip_reason(strategy, framework) or strategy.skip_reason(model)


REQUANTIZED, CONVERTED = "requantized", "converted"


@dataclasses.dataclass
class Converted:
    """A strategy's flatbuffer, named as the model is, and how it was made: "requantized" (the
    snapshot's weights in the fit's template) or "converted" (in full); `note` says why a
    requested re-quantization did not happen."""

    tflite: bytes
    path: str = CONVERTED
    note: str = ""


def convert_with(
    name: str, model: Any, job_dir: Path, job: Job, templates: dict[str, Any] | None = None
) -> Converted:
    """Converts `model` with strategy `name`. With `templates` (the worker's, for this model)
    and a job that asks to re-quantize, a kept template re-quantizes the snapshot; the first
    full conversion makes the template, checked on this snapshot before it is kept."""
    wants_template = templates is not None and job.requantize
    kept = templates.get(name) if wants_template else None
    note = ""
    if isinstance(kept, requantize.Template):
        try:
            tflite = kept.apply(model.get_weights(), _representative_dataset(model, job_dir, job))
            return Converted(_named(tflite, model, job), REQUANTIZED)
        except requantize.NotRequantizable as error:
            note = str(error)
    if name == strategies.STREAMING:
        converter, step, internal = _streaming_converter(model, job_dir, job)
        with strategies.quiet_tensorflow():
            tflite = converter.convert()
        if internal:  # the state stays inside the fused LSTM ops
            outputs = output_names(model, _output_count(tflite))
            inputs = [i["name"] for i in job.inputs]
            return Converted(with_model_io(tflite, inputs, outputs, {"state": "internal"}))
        return Converted(_named(tflite, model, job, step))
    converter, _ = _configured_converter(name, model, job_dir, job)
    capture = requantize.Capture(converter) if wants_template and kept is None else None
    try:
        with strategies.quiet_tensorflow():
            tflite = _named(converter.convert(), model, job)
    finally:
        if capture is not None:
            capture.release()
    if capture is not None:
        try:
            templates[name] = _checked_template(name, model, job_dir, job, capture, tflite)
        except requantize.NotRequantizable as error:
            note = str(error)
            if not error.retry:
                templates[name] = note  # every later export of this fit converts in full
    return Converted(tflite, CONVERTED, note or (kept if isinstance(kept, str) else ""))


def _named(tflite: bytes, model: Any, job: Job, step: Any = None) -> bytes:
    """The flatbuffer in the model's input and output order and names; a streaming one's
    state inputs and next-state outputs after them, paired in its metadata."""
    inputs = [i["name"] for i in job.inputs]
    if step is None:
        return with_model_io(tflite, inputs, output_names(model, _output_count(tflite)))
    pairs = streaming.state_pairs(step)
    outputs = output_names(model, _output_count(tflite) - len(pairs))
    named = with_model_io(
        tflite,
        [*inputs, *(given for given, _ in pairs)],
        [*outputs, *(produced for _, produced in pairs)],
        {"state": pairs},
    )
    return with_shared_state_scales(named, pairs)


def _checked_template(name, model, job_dir, job, capture, converted: bytes):
    """The template of this conversion, once its re-quantization of the same weights gives
    `converted` byte for byte (or, where the converter's layout varies, the same outputs in
    LiteRT and TFLite Micro on the validation inputs)."""
    weights = model.get_weights()
    inputs = [TensorInfo.from_json(i) for i in job.inputs]
    try:
        model.set_weights(requantize.coded(weights))
        converter = strategies.STRATEGIES[name].build(
            model, inputs, job.batch_size, lambda traced: None, _scratch(job_dir)
        )
        configure(converter, job.quantization, lambda: iter(()))
        with strategies.quiet_tensorflow():
            code_model = requantize.float_model(converter)
    finally:
        model.set_weights(weights)
    template = requantize.Template(capture, weights, code_model)
    dataset = _representative_dataset(model, job_dir, job)
    with strategies.quiet_tensorflow():
        again = _named(template.apply(weights, dataset), model, job)
    difference = differs(again, converted, job_dir, job)
    if difference:
        raise requantize.NotRequantizable(f"re-quantizing differs from converting: {difference}")
    return template


def differs(candidate: bytes, converted: bytes, job_dir: Path, job: Job) -> str | None:
    """None when `candidate` is `converted` byte for byte, or runs identically to it in LiteRT
    and TFLite Micro on the job's validation inputs; else what differs."""
    if candidate == converted:
        return None
    validation = job_dir / protocol.VALIDATION_FILE
    if not validation.exists():
        return "the flatbuffers differ and there are no validation inputs to compare outputs on"
    from keras_tflite.runtime.litert import TFLiteModel
    from keras_tflite.runtime.micro import MicroModel

    stored = protocol.read_arrays(validation)
    arrays = {i["name"]: stored[i["name"]] for i in job.inputs}
    for runtime in (TFLiteModel, MicroModel):
        a, b = flat(runtime(candidate).predict(arrays)), flat(runtime(converted).predict(arrays))
        if any(not np.array_equal(x, y) for x, y in zip(a, b)):
            return f"{runtime.__name__} outputs differ on the validation inputs"
    return None


def _output_count(tflite: bytes) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return schema.Model.GetRootAs(tflite, 0).Subgraphs(0).OutputsLength()


def _configured_converter(name: str, model: Any, job_dir: Path, job: Job):
    """The strategy's converter, configured for the job's quantization; and the calibration
    batches."""
    strategy = strategies.STRATEGIES[name]
    inputs = [TensorInfo.from_json(i) for i in job.inputs]
    batches = _calibration_batches(job_dir, job)

    def check(traced) -> None:
        _check_trace(traced, model, inputs, batches[:_TRACE_CHECK_SAMPLES])

    converter = strategy.build(model, inputs, job.batch_size, check, _scratch(job_dir))
    learned = tfmot.QAT in job.optimizations  # quantization-aware training set the ranges
    dataset = None if learned else _representative_dataset(model, job_dir, job)
    configure(converter, job.quantization, dataset)
    return converter, batches


def _streaming_converter(model: Any, job_dir: Path, job: Job):
    """The converter of the model's one-step form, the step model, and whether the state stays
    inside the model: LSTMs as fused ops on a one-step window, calibrated on consecutive steps;
    anything else with the state as inputs and outputs, calibrated on (sample, state) pairs met
    stepping through the calibration sequences."""
    import tensorflow as tf

    inputs = [TensorInfo.from_json(i) for i in job.inputs]
    step = streaming.StepModel(model, inputs)
    stored = protocol.read_arrays(job_dir / protocol.CALIBRATION_FILE)
    sequences = stored[inputs[0].name].astype(np.float32)
    difference = streaming.check_step(step, model, sequences[:_STEP_CHECK_SEQUENCES])
    if difference > _TRACE_TOLERANCE:
        raise ValueError(
            f"stepping the model does not reproduce its window outputs (max relative "
            f"difference {difference:.3g})"
        )
    one_step = streaming.one_step_lstm_model(step)
    if one_step is not None:
        info = TensorInfo(inputs[0].name, (1, *inputs[0].shape[1:]), inputs[0].dtype)
        converter = strategies.STRATEGIES["keras_frozen"].build(
            one_step, [info], 1, lambda traced: None, _scratch(job_dir)
        )
        # Consecutive steps of whole sequences spread over the calibration set (its first
        # ones may all come from one stretch of the data: measured 0.29 normalized error
        # against 0.010 on the seed).
        spread = np.linspace(0, len(sequences) - 1, _FUSED_CALIBRATION_SEQUENCES).astype(int)
        steps = streaming.ordered_steps(sequences[np.unique(spread)])
        samples = [{info.name: steps[i : i + 1]} for i in range(len(steps))]
        configure(converter, job.quantization, lambda: iter(samples))
        return converter, step, True
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [streaming.frozen_step(step)], model
    )
    samples = streaming.calibration_steps(step, sequences, len(sequences), seed=0)

    def representative_dataset():
        for done, sample in enumerate(samples, 1):
            yield sample
            if done % max(1, len(samples) // 20) == 0:
                protocol.progress(job_dir, "calibrating", done, len(samples))

    configure(converter, job.quantization, representative_dataset)
    return converter, step, False


_STEP_CHECK_SEQUENCES = 16
_FUSED_CALIBRATION_SEQUENCES = 40


def _scratch(job_dir: Path) -> Path:
    scratch = job_dir / "scratch"  # files a converter reads lazily; removed with the job
    scratch.mkdir(exist_ok=True)
    return scratch


def _calibration_batches(job_dir: Path, job: Job) -> list[dict[str, np.ndarray]]:
    stored = protocol.read_arrays(job_dir / protocol.CALIBRATION_FILE)
    arrays = {i["name"]: stored[i["name"]] for i in job.inputs}
    return list(_batches(arrays, job.batch_size))


def _representative_dataset(model: Any, job_dir: Path, job: Job):
    """The job's calibration samples as the converter takes them, reporting progress."""
    names = [i["name"] for i in job.inputs]
    batches = _calibration_batches(job_dir, job)

    def representative_dataset():  # batches keyed by input name: signatures may reorder inputs
        every = max(1, len(batches) // 20)
        for done, batch in enumerate(batches, 1):
            if getattr(model, "positional_calibration", False):
                yield [batch[name] for name in names]
            else:
                yield batch
            if done % every == 0 or done == len(batches):
                protocol.progress(job_dir, "calibrating", done, len(batches))

    return representative_dataset


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
    """Raises when the traced function's outputs differ from the model's on `batches`. The
    model runs once, eagerly, on all of them: an eager call of a recurrent model costs a Python
    loop over its steps, whatever the batch."""
    stacked = [np.concatenate([b[i.name] for b in batches]) for i in inputs]
    expected = flat(model(stacked[0] if len(stacked) == 1 else stacked, training=False))
    got = [flat(traced(*[b[i.name] for i in inputs])) for b in batches]
    for index, e in enumerate(expected):
        g = np.concatenate([outputs[index] for outputs in got])
        diff = float(np.max(np.abs(g - e)))
        if diff > _TRACE_TOLERANCE * (1.0 + float(np.max(np.abs(e)))):
            raise ValueError(
                f"the traced graph does not reproduce the model (max abs difference {diff:.3g})"
            )
