"""What an export leaves behind for people: its record (a line of history.jsonl), its manifest,
its deployment files, and one printed line."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

from keras_tflite import caller
from keras_tflite.deploy import artifacts, firmware
from keras_tflite.runtime.flatbuffer import model_io


@dataclasses.dataclass
class ExportRecord:
    """One export, judged: what `history.jsonl` holds and the verbose line says.

    `metrics` are the export's `tflite_*` logs: TFLite Micro's unprefixed, LiteRT's as
    `tflite_litert_*` (empty when the export failed before judging). `float_metrics` are the
    float model's loss and compiled metrics on the same validation samples, whose count is in
    `validation` (`samples`, of `available`).
    """

    epoch: int
    step: int
    exportable: bool
    reason: str | None
    monitor: str
    value: float | None = None
    new_best: bool = False
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float | None = None
    float_value: float | None = None  # the monitored metric's float counterpart, same samples
    float_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    validation: dict[str, int] | None = None
    closer_to_float: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    skipped_epochs: list[int] = dataclasses.field(default_factory=list)
    path: str | None = None
    conversion: str | None = None  # "requantized" or "converted" (ConversionResult.path)
    # streaming=True: the streaming model's folder ("stream/" when kept) or why it is not kept,
    # and its cost against the window model.
    stream: dict[str, Any] | None = None
    abandoned: bool = False  # stopped by a Ctrl-C before it finished
    time: str = dataclasses.field(default_factory=lambda: now())
    # Notes by kind, so each kind is printed once; not written to history.jsonl.
    notes: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["notes"]
        return data

    @property
    def unit(self) -> str:
        """'epoch 3', or 'step 400' for a TF1 session's export (sessions count steps)."""
        return f"epoch {self.epoch}" if self.epoch else f"step {self.step}"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def float_counterpart(monitor: str, float_metrics: dict[str, float]) -> float | None:
    """The float model's value of an int8 monitor on the same samples: 'tflite_val_loss' (or
    LiteRT's, or the streaming model's) -> float_metrics['loss']."""
    for prefix in ("tflite_val_", "tflite_litert_val_", "tflite_stream_val_"):
        if monitor.startswith(prefix):
            return float_metrics.get(monitor.removeprefix(prefix))
    return None


# Besides the monitored key and the compiled metrics in TFLite Micro (`tflite_val_*`), what goes
# into Keras' `logs` by default: the error against float, flash, arena and latency.
PROGRESS_KEYS = (
    "tflite_mae_vs_float",
    "tflite_model_bytes",
    "tflite_arena_bytes",
    "tflite_latency_ms",
)


def progress_logs(metrics: dict[str, float], monitor: str) -> dict[str, float]:
    """The export's `tflite_*` figures that join `logs` (and the progress bar) by default: the
    window model's, and with `streaming=True` the streaming model's alike."""
    return {
        k: v
        for k, v in metrics.items()
        if k == monitor
        or k.startswith(("tflite_val_", "tflite_stream_val_"))
        or k.replace("tflite_stream_", "tflite_", 1) in PROGRESS_KEYS
    }


def deployment_files(judged: Any, c_symbol: str, board: Any) -> dict[str, str]:
    """model_ops.h and model.ino, when TFLite Micro ran the model (so its arena is known)."""
    arena = judged.metrics.get("arena_bytes")
    if arena is None:
        return {}
    result = judged.result
    per_kernel_set = board.arena_bytes(judged.device) if judged.device else None
    return {
        "model_ops.h": firmware.model_header(
            result.ops, result.inputs, result.outputs, int(arena), None, per_kernel_set
        ),
        "model.ino": firmware.arduino_sketch(result.inputs, result.outputs, c_symbol),
    }


def stream_files(
    judged: Any, logs: dict[str, float], c_symbol: str, board: Any = None
) -> dict[str, bytes]:
    """`stream/`: the streaming model's own set (C array `<c_symbol>_stream`, model_ops.h with
    `ModelStream`, a once-per-sample sketch, a manifest with its cost against the window's)."""
    stream = judged.stream
    result = stream.result
    pairs = model_io(result.tflite)["state"]
    symbol = f"{c_symbol}_stream"
    arena = int(stream.metrics["arena_bytes"])
    stream_manifest = {
        "streaming": True,
        "state": pairs,
        "metrics": {k: v for k, v in logs.items() if k.startswith("tflite_stream_")},
        **result.describe(),
        "cost": stream_cost(judged),
        "c_symbol": symbol,
        "device": board.describe(stream.device) if board and stream.device else None,
    }
    files = artifacts.model_set_files(
        result.tflite,
        stream_manifest,
        c_symbol=symbol,
        extra_files={
            "model_ops.h": firmware.model_header(
                result.ops,
                result.inputs,
                result.outputs,
                arena,
                pairs,
                board.arena_bytes(stream.device) if board and stream.device else None,
            ),
            "model.ino": firmware.stream_sketch(result.inputs, pairs, symbol),
        },
    )
    return {f"stream/{name}": data for name, data in files.items()}


def stream_cost(judged: Any) -> dict[str, Any]:
    """What a new sample costs the streaming model against the window model: flash, arena,
    estimated instructions and TFLite Micro's invoke time on this machine. The work ratio is
    the instruction estimates' (timings here vary by +-30%), else the timings'."""
    keys = ("model_bytes", "arena_bytes", "instructions", "invoke_seconds")
    step = {k: judged.stream.metrics.get(k) for k in keys}
    window = {k: judged.metrics.get(k) for k in keys}
    ratio = None
    for key in ("instructions", "invoke_seconds"):
        if ratio is None and step[key] and window[key]:
            ratio = round(window[key] / step[key], 1)
    return {"per_sample": step, "per_window": window, "window_over_sample_work": ratio}


def manifest(
    judged: Any, record: ExportRecord, *, trained_on: str, c_symbol: str, board: Any = None
) -> dict:
    """What a kept export is: where it came from, how it was made, how good it is and what a
    board needs for it (`board`: a `keras_tflite.board.Board`)."""
    from importlib.metadata import version

    result = judged.result
    return {
        "epoch": record.epoch,
        "step": record.step,
        "time": record.time,
        "monitor": record.monitor,
        "value": record.value,
        "metrics": record.metrics,
        "float_metrics": record.float_metrics,
        "validation": record.validation,
        **result.describe(),
        "pruning": _pruning(result),
        "trained_on": trained_on,
        "c_symbol": c_symbol,
        "layer_errors": judged.layer_errors,
        "closer_to_float": record.closer_to_float,
        "warnings": record.warnings,
        "stream": record.stream,
        "device": board.describe(judged.device) if board and judged.device else None,
        "versions": {
            p: version(p)
            for p in ("keras-tflite", "tensorflow", "keras", "ai-edge-litert", "tflite-micro")
        },
    }


def _pruning(result: Any) -> dict[str, Any] | None:
    """A pruned model's sparsity per layer and what it saves once compressed (flash images,
    over-the-air updates): int8 flatbuffers store zeros densely."""
    if not result.sparsity:
        return None
    import gzip

    return {
        "sparsity": result.sparsity,
        "model_bytes": result.size,
        "gzip_bytes": len(gzip.compress(result.tflite, mtime=0)),
    }


def line(record: ExportRecord, best: str) -> str:
    """The verbose line: size, arena, the monitored value against float's, the verdict."""
    logs = record.metrics
    unit = "epoch" if record.epoch else "step"  # a TF1 session counts steps, not epochs
    head = f"Epoch {record.epoch}: " if record.epoch else f"Step {record.step}: "
    if record.skipped_epochs:
        plural = "s" if len(record.skipped_epochs) > 1 else ""
        head += f"({unit}{plural} {_spans(record.skipped_epochs)} not exported) "
    if record.abandoned:
        return head + f"export {record.reason}"
    if not record.exportable and not logs:
        return head + f"export failed: {record.reason}"
    parts = [f"int8 {logs.get('tflite_model_bytes', 0) / 1024:.1f} KB"]
    if "tflite_arena_bytes" in logs:
        parts.append(f"arena {logs['tflite_arena_bytes'] / 1024:.1f} KB")
    if "tflite_latency_ms" in logs:
        parts.append(f"~{logs['tflite_latency_ms']:.3g} ms")
    elif "tflite_instructions" in logs:
        parts.append(f"~{logs['tflite_instructions'] / 1e6:.2g}M instructions")
    judged_on = len(parts)
    if record.value is not None:
        counterpart = "" if record.float_value is None else f" (float {record.float_value:.4g})"
        parts.append(f"{record.monitor} {record.value:.4g}{counterpart}")
    if "tflite_mae_vs_float" in logs:
        parts.append(f"MAE vs float {logs['tflite_mae_vs_float']:.3g} in TFLite Micro")
    if "tflite_stream_mae_vs_float" in logs:
        parts.append(f"streaming {logs['tflite_stream_mae_vs_float']:.3g}")
    if record.validation and len(parts) > judged_on:  # the figures above, int8 and float alike
        parts.append(f"on {samples_text(record.validation)}")
    if record.new_best:
        tail = f"new best, saved to {best}"
    elif not record.exportable:
        tail = f"not exportable: {record.reason}"
    else:
        tail = "not better"
    return head + ", ".join(parts) + " - " + tail


def samples_text(validation: dict[str, int]) -> str:
    """'529 samples', or '1,024 of 1,728 samples' for a draw."""
    count, available = validation["samples"], validation["available"]
    of = "" if available <= count else f" of {available:,}"
    return f"{count:,}{of} samples"


def _spans(epochs: list[int]) -> str:
    """[2, 3, 4, 7] -> '2-4, 7'."""
    spans: list[list[int]] = []
    for epoch in epochs:
        if spans and epoch == spans[-1][1] + 1:
            spans[-1][1] = epoch
        else:
            spans.append([epoch, epoch])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


# The note of an export that a full disk stopped: said in full once, then in short until an
# export is written again.
DISK_FULL = "disk_full"


class Reporter:
    """Prints each export's line, each kind of note once, and warns once of a missing key."""

    def __init__(self, best: Path):
        self.best = best
        self._said: set[str] = set()
        self._disk_full = False

    def say(self, entry: ExportRecord) -> None:
        notes = dict(entry.notes)
        full = notes.pop(DISK_FULL, None)  # the whole story, told at the first such export
        still = f"the disk is still full ({self.best.parent})"
        if full is not None and entry.reason == full:  # the export itself was not written
            shown = dataclasses.replace(entry, reason=still) if self._disk_full else entry
            print(line(shown, str(self.best)), flush=True)
        else:
            print(line(entry, str(self.best)), flush=True)
            if full is not None:  # kept, but its line in history.jsonl was not
                said = still if self._disk_full else full
                print(f"  note: history.jsonl not written: {said}", flush=True)
        if full is None and self._disk_full:
            print(f"  note: writing works again: exports land in {self.best.parent}", flush=True)
        self._disk_full = full is not None
        if entry.skipped_epochs:
            unit = "epoch" if entry.epoch else "step"
            notes["skipped"] = (
                f"{unit}s that ended while an export was still running are not exported (latest "
                f"wins); every_n_{unit}s=N spaces exports out, blocking=True exports every one."
            )
        for kind, text in notes.items():
            if kind not in self._said:
                self._said.add(kind)
                print(f"  note: {text}", flush=True)

    def warn_missing(self, key: str, logs: dict[str, Any]) -> None:
        if f"missing {key}" in self._said:
            return
        self._said.add(f"missing {key}")
        caller.warn(
            f"TFLiteExportCallback is watching '{key}', which is not in the logs. "
            f"Available keys: {sorted(logs)}."
        )
