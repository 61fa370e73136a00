"""An export's judgement: the converted model's outputs in LiteRT and TFLite Micro against the
float model's, as the worker reported them, and the metrics of each."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.board import Board
from keras_tflite.conversion import ConversionResult
from keras_tflite.runtime.fidelity import fidelity
from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import Event


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
    verification: dict[str, Any] | None = None  # a full conversion against a candidate
    stream: Judged | None = None  # the streaming form of the same snapshot (streaming=True)
    device: dict[str, Any] | None = None  # `board.device_report`, when TFLite Micro ran it
    # Why LiteRT could not run the model (its outputs and `litert_*` metrics are then absent),
    # or why it ran without its default delegate.
    litert_note: str | None = None


def read_judged(
    job_dir: Path, result: ConversionResult, began: float, board: Board = Board()
) -> Judged:
    """The worker's judgement of `result`: runtime outputs against float, and their metrics
    (the arena and instructions for `board`)."""
    events = protocol.read_events(job_dir)
    verification = protocol.first(events, Event.VERIFIED)
    if verification is not None and verification["difference"] is None:
        return Judged(result, {}, [], [], None, None, since(began), verification=verification)
    report = protocol.first(events, Event.JUDGED)
    if report is None:
        return Judged(result, {}, [], [], None, _judging_crashed(events), since(began))
    arrays = protocol.read_judged(job_dir)
    expected, litert = arrays.expected, arrays.litert
    metrics = {}
    if litert:  # LiteRT's numbers, reported beside TFLite Micro's
        metrics |= {f"litert_{k}_vs_float": v for k, v in fidelity(expected, litert).items()}
    micro_error = report.get("micro_error")
    micro = arrays.micro or []
    if micro_error is None:
        metrics |= {f"{k}_vs_float": v for k, v in fidelity(expected, micro).items()}
        if litert:
            metrics["litert_max_lsb_vs_micro"] = _max_lsb(result, litert, micro)
        metrics |= board.metrics(report["device"])
    if "invoke_seconds" in report:  # TFLite Micro's time for one invoke, on this machine
        metrics["invoke_seconds"] = float(report["invoke_seconds"])
    metrics["model_bytes"] = float(result.size)
    if "rebuild_max_abs_diff" in report:  # the TensorFlow rebuild against the training backend
        metrics["rebuild_max_abs_diff"] = report["rebuild_max_abs_diff"]
    layers = protocol.first(events, Event.LAYERS)
    return Judged(
        result,
        metrics,
        litert,
        expected,
        micro_error,
        None,
        since(began),
        micro,
        layers,
        verification,
        device=report.get("device"),
        litert_note=_litert_note(report),
    )


def _judging_crashed(events: list[dict[str, Any]]) -> str:
    """Why there is no judgement: the runtime that crashed the worker, when it is known."""
    running = protocol.every(events, Event.RUNNING)
    if not running:
        return "judging crashed the worker (LiteRT or TFLite Micro)"
    return f"judging crashed the worker while {protocol.RUNTIME_NAMES[running[-1]]} ran the model"


def _litert_note(report: dict[str, Any]) -> str | None:
    """What a person should know about LiteRT's run: it could not run the model (so it is
    judged on TFLite Micro alone), or its default delegate refused it."""
    error, refusal = report.get("litert_error"), report.get("litert_delegate")
    if error is not None:
        said = error if error.startswith("LiteRT") else f"LiteRT could not run it ({error})"
        return said + ("" if "micro_error" in report else ": judged on TFLite Micro alone")
    if refusal is not None:
        return (
            f"LiteRT's default delegate XNNPACK refused it ({refusal}); LiteRT's numbers come "
            "from its builtin kernels. TFLite Micro, which decides, is not affected"
        )
    return None


def _max_lsb(result: ConversionResult, litert: list[np.ndarray], micro: list[np.ndarray]) -> float:
    """Largest output difference between the runtimes, in steps of each output's int8 scale."""
    steps = [
        np.max(np.abs(a - b)) / t.scale if t.scale else np.max(np.abs(a - b))
        for t, a, b in zip(result.outputs, litert, micro)
    ]
    return float(np.round(max(steps), 3))


def since(began: float) -> float:
    """Seconds since `began` (a `time.perf_counter()`), rounded for records."""
    return round(time.perf_counter() - began, 2)
