"""The line between the caller and the conversion worker: what crosses it, by name.

The caller writes a job directory: `job.json` (a `Job`), the model (a `.keras`/`.h5` file, or a
source the worker loads), and `.npz` arrays (calibration samples; optionally a weights snapshot,
validation inputs and the training backend's float outputs). The worker appends one JSON event
per line to `progress.jsonl`, writes `model.tflite` when a strategy converts and `judged.npz`
when it judged the result, and exits with an `Exit` code. Each file has one writer and one
reader here.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

JOB_FILE = "job.json"
EVENTS_FILE = "progress.jsonl"
LOG_FILE = "worker.log"  # in the worker's own folder: its output across jobs
# The worker's environment: its log's path, and its parent's pid (it never outlives the parent).
LOG_VARIABLE = "KERAS_TFLITE_WORKER_LOG"
PARENT_VARIABLE = "KERAS_TFLITE_PARENT_PID"
MODEL_FILE = "model.tflite"
CANDIDATE_FILE = "candidate.tflite"  # a re-quantized model to verify against a full conversion
CALIBRATION_FILE = "calibration.npz"
VALIDATION_FILE = "validation.npz"
WEIGHTS_FILE = "weights.npz"
REFERENCE_FILE = "reference.npz"
JUDGED_FILE = "judged.npz"

# The worker's modes besides strategy names: report the model's inputs and outputs; judge a
# given .tflite against the model.
DESCRIBE, JUDGE = "--describe", "--judge"
# The runtimes a model is judged in, in the order they run (TFLite Micro decides), by the names
# events and reports use.
MICRO, LITERT = "micro", "litert"
RUNTIMES = (MICRO, LITERT)
RUNTIME_NAMES = {MICRO: "TFLite Micro", LITERT: "LiteRT"}


class Exit(enum.IntEnum):
    """The worker's exit codes (a crash shows as a signal instead)."""

    DONE = 0
    NOTHING_CONVERTED = 2
    LOAD_FAILED = 3


class Event(str, enum.Enum):
    """The kinds of line in `progress.jsonl`."""

    LOAD_ERROR = "load_error"  # the model could not be rebuilt: the message
    FACTS = "facts"  # facts about the deployable model (a pruned model's sparsity)
    DESCRIBED = "described"  # DESCRIBE: the model's framework, inputs and outputs
    START = "start"  # a strategy started: its name
    ATTEMPT = "attempt"  # a strategy ended: an `Attempt`
    JUDGING = "judging"  # judging the converted model began
    # Judging: a runtime (MICRO or LITERT) starts running the model. The last one before the
    # worker died is the one that crashed it.
    RUNNING = "running"
    # Judged: what a board needs, TFLite Micro's invoke time; why a runtime could not run it
    # ("micro_error", "litert_error"), why LiteRT ran it without its default delegate
    # ("litert_delegate").
    JUDGED = "judged"
    LAYERS = "layers"  # per-layer int8 errors
    PROGRESS = "progress"  # {"stage", "done", "total"} of a long step
    PATH = "path"  # how it converted: {"path": "requantized" or "converted", "note": why not}
    # The candidate against a full conversion: {"identical": bytes equal, "difference": None
    # (equal bytes or outputs) or what differs}.
    VERIFIED = "verified"
    DONE = "done"  # the job is over: {"exit": an `Exit`, "rss_mb": the worker's memory}


@dataclasses.dataclass
class Attempt:
    """One strategy's outcome: "converted", "failed", "crashed", "timed out" or "skipped"."""

    strategy: str
    status: str
    reason: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Job:
    """What the worker is asked to do. Inputs are `TensorInfo.to_json()` dicts, in the model's
    order; `source` (the CLI) names a saved model the worker loads itself."""

    framework: str
    inputs: list[dict[str, Any]]
    quantization: str
    batch_size: int = 1
    model_file: str | None = None
    source: dict[str, Any] | None = None
    # The same key in two jobs means the same model (weights aside): the worker rebuilds it once.
    model_key: str | None = None
    imports: list[str] = dataclasses.field(default_factory=list)
    sys_path: list[str] = dataclasses.field(default_factory=list)
    optimizations: list[str] = dataclasses.field(default_factory=list)
    lambda_globals: dict[str, Any] = dataclasses.field(default_factory=dict)
    niceness: int = 0
    layer_errors: bool = False
    # Re-quantize the snapshot in the fit's template when there is one (a fit's exports).
    requantize: bool = False
    # Convert in full and compare with `CANDIDATE_FILE`; judge the full conversion if they differ.
    verify: bool = False

    def write(self, job_dir: Path) -> None:
        (job_dir / JOB_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def read(cls, job_dir: Path) -> Job:
        return cls(**json.loads((job_dir / JOB_FILE).read_text()))


def write_arrays(path: Path, arrays: dict[str, np.ndarray] | list[np.ndarray]) -> None:
    """Named arrays (by input name) or a list (weights, outputs) as one `.npz`."""
    if isinstance(arrays, dict):
        np.savez(path, **arrays)
    else:
        np.savez(path, *arrays)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return {k: stored[k] for k in stored.files}


def read_list(path: Path) -> list[np.ndarray]:
    """A list written by `write_arrays`, in order."""
    arrays = read_arrays(path)
    return [arrays[f"arr_{i}"] for i in range(len(arrays))]


def emit(job_dir: Path, kind: Event, value: Any) -> None:
    """Worker side: appends one event (fsynced, so a crash right after cannot lose it)."""
    with open(job_dir / EVENTS_FILE, "a") as f:
        f.write(json.dumps({kind.value: value, "time": time.time()}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def progress(job_dir: Path, stage: str, done: int, total: int) -> None:
    """Tells the caller how far a long step got (the CLI draws it as a bar)."""
    emit(job_dir, Event.PROGRESS, {"stage": stage, "done": done, "total": total})


def read_events(job_dir: Path) -> list[dict[str, Any]]:
    """Caller side: the events so far (a torn last line is skipped)."""
    path = job_dir / EVENTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def first(events: list[dict[str, Any]], kind: Event, default: Any = None) -> Any:
    """The value of the first event of `kind`."""
    return next((e[kind.value] for e in events if kind.value in e), default)


def every(events: list[dict[str, Any]], kind: Event) -> list[Any]:
    return [e[kind.value] for e in events if kind.value in e]


def crashed_runtime(events: list[dict[str, Any]]) -> str | None:
    """The runtime that was running the model when the worker died judging it (its job never
    reported JUDGED nor DONE), else None."""
    if first(events, Event.JUDGED) is not None or first(events, Event.DONE) is not None:
        return None
    running = every(events, Event.RUNNING)
    return running[-1] if running else None


# Lines of TensorFlow's start-up chatter that say nothing about a conversion.
_NOISE = (
    "warnings.warn",
    "migration guide",
    "Warning:",
    "cuda",
    "cuInit",
    "oneDNN",
    "rebuild TensorFlow",
    "absl::InitializeLog",
    "TF-TRT",
    "E0000",
    "W0000",
    "I0000",
    # Advice that only holds with TensorFlow's own kernels, which no microcontroller has.
    "Select TF ops",
    "SELECT_TF_OPS",
)


# Written to the worker's log at the start of each job: the lines after it are that job's.
JOB_MARKER = "== keras-tflite job"


def last_messages(log_path: Path, count: int = 3) -> str:
    """The last lines the worker printed in its current job that are not TensorFlow chatter."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    starts = [i for i, line in enumerate(lines) if line.startswith(JOB_MARKER)]
    lines = lines[starts[-1] + 1 :] if starts else lines
    useful = [ln.strip() for ln in lines if ln.strip() and not any(n in ln for n in _NOISE)]
    return " | ".join(useful[-count:]) or "(no output)"


def write_judged(
    job_dir: Path,
    expected: list[np.ndarray],
    litert: list[np.ndarray] | None,
    micro: list[np.ndarray] | None,
) -> None:
    """The float outputs and each runtime's that ran it, per output position."""
    arrays = {f"float_{i}": a for i, a in enumerate(expected)}
    arrays |= {f"litert_{i}": a for i, a in enumerate(litert or [])}
    arrays |= {f"micro_{i}": a for i, a in enumerate(micro or [])}
    np.savez(job_dir / JUDGED_FILE, **arrays)


@dataclasses.dataclass
class JudgedArrays:
    """The float outputs and each runtime's: empty (LiteRT) or None (TFLite Micro) for a
    runtime that could not run the model."""

    expected: list[np.ndarray]
    litert: list[np.ndarray]
    micro: list[np.ndarray] | None


def read_judged(job_dir: Path) -> JudgedArrays:
    arrays = read_arrays(job_dir / JUDGED_FILE)

    def series(prefix: str) -> list[np.ndarray]:
        return [arrays[f"{prefix}_{i}"] for i in range(sum(k.startswith(prefix) for k in arrays))]

    micro = series("micro")
    return JudgedArrays(series("float"), series("litert"), micro or None)
