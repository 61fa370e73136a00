"""The worker judges a converted model: float, LiteRT and TFLite Micro on the same inputs."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.board import device_report
from keras_tflite.runtime.flatbuffer import display_name, model_io
from keras_tflite.runtime.inspect import io_details, trailing_number
from keras_tflite.specs import TensorInfo, flat, output_names
from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import Event, Job


def log_path() -> Path:
    """This worker's log, where TFLite Micro prints why it cannot run a model."""
    import os

    return Path(os.environ.get(protocol.LOG_VARIABLE, protocol.LOG_FILE))


def judge(
    model: Any,
    tflite: bytes,
    job_dir: Path,
    job: Job,
    *,
    crashed: dict[str, str] | None = None,
    before: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs float, then TFLite Micro and LiteRT, each on its own, on the validation inputs;
    writes `judged.npz` with the outputs of each runtime that ran it.

    Args:
        crashed: Runtimes that crashed the worker judging this model, by name, with how the
            worker died: not run again, reported as crashed.
        before: Called with each runtime's name just before it runs (fault injection).

    Returns:
        What is not an array: what a board needs (`device`: arena per kernel set, instructions
        per core), and why a runtime could not run the model (`micro_error`, `litert_error`)
        or why LiteRT ran it without its default delegate (`litert_delegate`).
    """
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
    streaming = bool((model_io(tflite) or {}).get("state"))
    run = _Runs(tflite, job_dir, len(arrays[0]), report)
    crashed = crashed or {}
    for runtime in protocol.RUNTIMES:
        if runtime in crashed:
            report[f"{runtime}_error"] = _crash(runtime, crashed[runtime])
            continue
        protocol.emit(job_dir, Event.RUNNING, runtime)
        if before is not None:
            before(runtime)
        try:
            if streaming:
                run.streaming(runtime, arrays[0])
            else:
                run.in_chunks(runtime, {i.name: a for i, a in zip(inputs, arrays)})
        except Exception as error:  # noqa: BLE001 - one runtime's failure is reported, not fatal
            report[f"{runtime}_error"] = _failure(runtime, error)
    protocol.progress(job_dir, "comparing", run.count, run.count)
    order = list(range(len(expected))) if streaming else _paired_outputs(tflite, model, expected)
    micro, litert = (run.outputs.get(r) for r in (protocol.MICRO, protocol.LITERT))
    protocol.write_judged(
        job_dir,
        expected,
        None if litert is None else [litert[p] for p in order],
        None if micro is None else [micro[p] for p in order],
    )
    return report


class _Runs:
    """Each runtime's outputs on the validation inputs, and what it tells about the model,
    with progress reported across both runtimes."""

    def __init__(self, tflite: bytes, job_dir: Path, count: int, report: dict[str, Any]):
        self.tflite, self.job_dir, self.report = tflite, job_dir, report
        self.outputs: dict[str, list[np.ndarray]] = {}
        self.count, self.done, self.total = count, 0, count * len(protocol.RUNTIMES)

    def in_chunks(self, runtime: str, named: dict[str, np.ndarray]) -> None:
        from keras_tflite.runtime.litert import TFLiteModel
        from keras_tflite.runtime.micro import MicroModel

        with warnings.catch_warnings():  # a refused delegate is reported, not warned
            warnings.simplefilter("ignore")
            runner = (
                MicroModel(self.tflite) if runtime == protocol.MICRO else TFLiteModel(self.tflite)
            )
            size = max(_JUDGE_CHUNK, -(-self.count // 20))
            chunks = []
            for start in range(0, self.count, size):  # in chunks, reporting progress
                chunks.append(
                    flat(runner.predict({n: a[start : start + size] for n, a in named.items()}))
                )
                self._advance(min(size, self.count - start))
        self.outputs[runtime] = [np.concatenate(pieces) for pieces in zip(*chunks)]
        self._describe(runtime, runner)

    def streaming(self, runtime: str, sequences: np.ndarray) -> None:
        """A streaming model stepped through each validation sequence from the initial state;
        its last-step outputs against the window model's. `invoke_seconds` is one step's."""
        from keras_tflite.runtime.streaming import StreamingModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stream = StreamingModel(self.tflite, runtime)
            self.outputs[runtime] = flat(stream.predict(sequences))
        self._advance(self.count)
        self._describe(runtime, stream.runner)

    def _describe(self, runtime: str, runner: Any) -> None:
        if runtime == protocol.LITERT:
            if runner.delegate_refusal:
                self.report["litert_delegate"] = runner.delegate_refusal
            return
        self.report["device"] = device_report(self.tflite, runner.allocations())
        seconds = runner.invoke_seconds()
        if seconds is not None:
            self.report["invoke_seconds"] = seconds

    def _advance(self, samples: int) -> None:
        """Progress in validation samples (both runtimes' share of the work counted)."""
        self.done += samples
        compared = self.done * self.count // self.total
        protocol.progress(self.job_dir, "comparing", compared, self.count)


_JUDGE_CHUNK = 16


def _failure(runtime: str, error: Exception) -> str:
    """Why `runtime` could not run the model, on one line."""
    if runtime == protocol.MICRO and isinstance(error, RuntimeError):
        # An op TFLite Micro lacks: it says which in its log.
        return f"{error}: {protocol.last_messages(log_path(), count=2)}"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:500]


def _crash(runtime: str, how: str) -> str:
    return (
        f"{protocol.RUNTIME_NAMES[runtime]} crashed running it (the worker process died with {how})"
    )


def _paired_outputs(tflite: bytes, model: Any, expected: list[np.ndarray]) -> list[int]:
    """For each float output, the position of the runtime output that computes it. A file
    keras-tflite converted is in the model's order; another (`keras-tflite compare`) is paired
    by output name, else by the converter's numbering ('Identity', 'Identity_1', ...)."""
    outputs = io_details(tflite)[1]
    positions = list(range(len(outputs)))
    if model_io(tflite) is not None:
        return positions
    raw = [display_name(t.name) for t in outputs]
    names = output_names(model, len(expected))
    if sorted(raw) == sorted(names):
        return [raw.index(n) for n in names]
    return sorted(positions, key=lambda p: trailing_number(outputs[p].name))
