"""The worker judges a converted model: float, LiteRT and TFLite Micro on the same inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.board import device_report
from keras_tflite.runtime.flatbuffer import display_name, model_io
from keras_tflite.runtime.inspect import trailing_number
from keras_tflite.specs import TensorInfo, flat, output_names
from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import Job


def log_path() -> Path:
    """This worker's log, where TFLite Micro prints why it cannot run a model."""
    import os

    return Path(os.environ.get(protocol.LOG_VARIABLE, protocol.LOG_FILE))


def judge(model: Any, tflite: bytes, job_dir: Path, job: Job) -> dict[str, Any]:
    """Runs float, LiteRT and TFLite Micro on the validation inputs; writes `judged.npz`.

    Returns:
        What is not an array: what a board needs (`device`: arena per kernel set, instructions
        per core), or why TFLite Micro could not run it.
    """
    from keras_tflite.runtime.litert import TFLiteModel
    from keras_tflite.runtime.micro import MicroModel

    inputs = [TensorInfo.from_json(i) for i in job.inputs]
    stored = protocol.read_arrays(job_dir / protocol.VALIDATION_FILE)
    arrays = [stored[i.name] for i in inputs]
    rebuilt = flat(model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0))
    report: dict[str, Any] = {}
    expected = rebuilt
    if (job_dir / protocol.REFERENCE_FILE).exists():  # the training backend's own outputs
        expected = protocol.read_list(job_dir / protocol.REFERENCE_FILE)
        report["rebuild_max_abs_diff"] = max(
            float(np.max(np.abs(a - b))) for a, b in zip(rebuilt, expected)
        )
    if (model_io(tflite) or {}).get("state"):
        return _judge_streaming(tflite, arrays[0], expected, job_dir, report)
    named = {i.name: a for i, a in zip(inputs, arrays)}
    litert, micro = TFLiteModel(tflite), None
    try:
        micro = MicroModel(tflite)
    except RuntimeError as error:  # an op TFLite Micro lacks: reported, not fatal
        report["micro_error"] = f"{error}: {protocol.last_messages(log_path(), count=2)}"
    chunks: dict[str, list[list[np.ndarray]]] = {"litert": [], "micro": []}
    count = len(arrays[0])
    size = max(_JUDGE_CHUNK, -(-count // 20))
    for start in range(0, count, size):  # in chunks, reporting progress
        part = {name: a[start : start + size] for name, a in named.items()}
        chunks["litert"].append(flat(litert.predict(part)))
        if micro is not None:
            try:
                chunks["micro"].append(flat(micro.predict(part)))
            except RuntimeError as error:
                report["micro_error"] = f"{error}: {protocol.last_messages(log_path(), count=2)}"
                micro = None
        protocol.progress(job_dir, "comparing", min(start + size, count), count)
    order = _paired_outputs(litert, output_names(model, len(expected)))

    def joined(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
        whole = [np.concatenate(pieces) for pieces in zip(*parts)]
        return [whole[position] for position in order]

    micro_outputs = joined(chunks["micro"]) if micro is not None else None
    protocol.write_judged(job_dir, expected, joined(chunks["litert"]), micro_outputs)
    if micro is not None:
        report["device"] = device_report(tflite, micro.allocations())
        seconds = micro.invoke_seconds()
        if seconds is not None:
            report["invoke_seconds"] = seconds
    return report


_JUDGE_CHUNK = 16


def _judge_streaming(tflite, sequences, expected, job_dir: Path, report: dict) -> dict[str, Any]:
    """A streaming model stepped through each validation sequence from the initial state; its
    last-step outputs against the window model's. `invoke_seconds` is one step's."""
    from keras_tflite.runtime.streaming import StreamingModel

    litert = flat(StreamingModel(tflite, "litert").predict(sequences))
    protocol.progress(job_dir, "comparing", len(sequences) // 2, len(sequences))
    micro = None
    try:
        stream = StreamingModel(tflite, "micro")
        micro = flat(stream.predict(sequences))
        seconds = stream.runner.invoke_seconds()  # one step
        if seconds is not None:
            report["invoke_seconds"] = seconds
        report["device"] = device_report(tflite, stream.runner.allocations())
    except RuntimeError as error:  # an op TFLite Micro lacks: reported, not fatal
        report["micro_error"] = f"{error}: {protocol.last_messages(log_path(), count=2)}"
    protocol.progress(job_dir, "comparing", len(sequences), len(sequences))
    protocol.write_judged(job_dir, expected, litert, micro)
    return report


def _paired_outputs(runner: Any, names: list[str]) -> list[int]:
    """For each float output, the position of the runtime output that computes it. A file
    keras-tflite converted is in the model's order; another (`keras-tflite compare`) is paired
    by output name, else by the converter's numbering ('Identity', 'Identity_1', ...)."""
    positions = list(range(len(runner.outputs)))
    if runner.in_model_order:
        return positions
    raw = [display_name(t.name) for t in runner.outputs]
    if sorted(raw) == sorted(names):
        return [raw.index(n) for n in names]
    return sorted(positions, key=lambda p: trailing_number(runner.outputs[p].name))
