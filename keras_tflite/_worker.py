"""The isolated conversion process: a converter segfault, abort, hang or OOM cannot reach the caller.

The caller writes a job directory (the model as a `.keras` file, the calibration samples as
`.npz`, `job.json`) and runs a worker process on `JOB_DIR STRATEGY...`. The worker
appends one JSON line per event to `progress.jsonl` and writes `model.tflite` on success. When a
strategy kills the worker, the caller records it and starts a new worker on the next strategy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
)
_ENTRY = "import sys; from keras_tflite._worker import main; sys.exit(main(sys.argv[1:]))"
# Set by tests to inject a real fault into a real worker: "<strategy>:segfault" or "<strategy>:hang".
FAULT_VARIABLE = "KERAS_TFLITE_INJECT_FAULT"
# The parent's pid: a worker whose parent is gone stops (it must never outlive training).
PARENT_VARIABLE = "KERAS_TFLITE_PARENT_PID"
# Worker modes besides strategy names: report the model's inputs and outputs; judge a given model.
DESCRIBE, JUDGE = "--describe", "--judge"


@dataclasses.dataclass
class Attempt:
    """One strategy's outcome: "converted", "failed", "crashed", "timed out" or "skipped"."""

    strategy: str
    status: str
    reason: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run(
    job_dir: Path, strategies: list[str], *, timeout: float, on_events: Callable | None = None
) -> list[Attempt]:
    """Runs the strategies in order in worker processes until one converts.

    `on_events` is called with the worker's events so far, a few times a second.
    """
    attempts: list[Attempt] = []
    remaining = list(strategies)
    while remaining:
        outcome = _run_worker(job_dir, remaining, timeout, on_events)
        attempts.extend(outcome)
        if any(a.status == "converted" for a in outcome):
            break
        done = {a.strategy for a in outcome}
        if not outcome or not done:
            break
        remaining = [s for s in remaining if s not in done]
        if outcome[-1].status not in ("crashed", "timed out"):
            break
    return attempts


def _run_worker(
    job_dir: Path, strategies: list[str], timeout: float, on_events: Callable | None = None
) -> list[Attempt]:
    progress = job_dir / "progress.jsonl"
    progress.unlink(missing_ok=True)
    log_path = job_dir / "worker.log"
    with open(log_path, "wb") as log, _live(
        subprocess.Popen(
            [sys.executable, "-c", _ENTRY, str(job_dir), *strategies],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                # The worker never joins a tf.distribute cluster its parent trains in.
                **{k: v for k, v in os.environ.items() if k != "TF_CONFIG"},
                "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1"),
                # Models trained on JAX or torch are rebuilt on TensorFlow, the converter's backend.
                "KERAS_BACKEND": "tensorflow",
                PARENT_VARIABLE: str(os.getpid()),
            },
        )
    ) as process:
        timed_out = _wait(process, progress, timeout, on_events)
    events = _read_events(progress)
    attempts = [Attempt(**e["attempt"]) for e in events if "attempt" in e]
    load_error = next((e["load_error"] for e in events if "load_error" in e), None)
    if load_error:
        raise RuntimeError(load_error)
    started = [e["start"] for e in events if "start" in e]
    finished = {a.strategy for a in attempts}
    running = next((s for s in started if s not in finished), None)
    if running is not None:
        since = next(e["time"] for e in events if e.get("start") == running)
        seconds = round(time.time() - since, 2)
        if timed_out:
            reason = f"no result after {timeout:g} s; the worker was killed"
            attempts.append(Attempt(running, "timed out", reason, seconds))
        else:
            reason = f"the converter process died with {_exit_name(process.returncode)}"
            last = last_messages(log_path)
            attempts.append(Attempt(running, "crashed", f"{reason}; last message: {last}", seconds))
    elif process.returncode not in (0, 2) and not attempts:
        raise RuntimeError(
            f"The conversion worker exited with {_exit_name(process.returncode)} before converting: "
            f"{last_messages(log_path)}"
        )
    return attempts


_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def _live(process: subprocess.Popen):
    """Tracks a running worker, so that `kill_running` can stop it."""
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        yield process
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)


def kill_running() -> int:
    """Kills every worker this process started that is still running; returns how many."""
    with _RUNNING_LOCK:
        running = [p for p in _RUNNING if p.poll() is None]
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(running)


def _wait(
    process: subprocess.Popen, progress: Path, timeout: float, on_events: Callable | None
) -> bool:
    """Waits for the worker; kills it when one strategy runs longer than `timeout` seconds."""
    started_at = time.time()
    while True:
        try:
            process.wait(timeout=0.2)
            return False
        except subprocess.TimeoutExpired:
            pass
        events = _read_events(progress)
        if on_events is not None:
            on_events(events)
        starts = [e["time"] for e in events if "start" in e]
        since = starts[-1] if starts else started_at
        # Loading TensorFlow and the model gets its own allowance before the first strategy.
        if time.time() - since > timeout + (0 if starts else 120):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True


def _read_events(progress: Path) -> list[dict[str, Any]]:
    if not progress.exists():
        return []
    lines = progress.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _exit_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def last_messages(log_path: Path, count: int = 3) -> str:
    """The last lines of the worker's output that are not TensorFlow start-up chatter."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    useful = [ln.strip() for ln in lines if ln.strip() and not any(n in ln for n in _NOISE)]
    return " | ".join(useful[-count:]) or "(no output)"


# ---- the worker process ------------------------------------------------------------------------


def run_mode(
    job_dir: Path, mode: str, *, timeout: float, on_events: Callable | None = None
) -> dict[str, Any]:
    """Runs the worker in DESCRIBE or JUDGE mode; returns the event it reports."""
    _run_worker(job_dir, [mode], timeout, on_events)
    key = "described" if mode == DESCRIBE else "judged"
    events = _read_events(job_dir / "progress.jsonl")
    found = next((e[key] for e in events if key in e), None)
    if found is None:
        raise RuntimeError(
            f"The worker could not {mode.lstrip('-')} the model: "
            f"{last_messages(job_dir / 'worker.log')}"
        )
    return found


def facts(job_dir: Path) -> dict[str, Any]:
    """What the last worker reported about the deployable model (a pruned model's sparsity)."""
    events = _read_events(job_dir / "progress.jsonl")
    return next((e["facts"] for e in events if "facts" in e), {})


def _emit(job_dir: Path, event: dict[str, Any]) -> None:
    with open(job_dir / "progress.jsonl", "a") as f:
        f.write(json.dumps({**event, "time": time.time()}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def main(argv: list[str]) -> int:
    """The worker's entry point: `JOB_DIR STRATEGY...`."""
    from keras_tflite import _job

    _die_with_parent()
    job_dir, strategies = Path(argv[0]), argv[1:]
    job = json.loads((job_dir / "job.json").read_text())
    os.nice(job.get("niceness", 0))  # exports during training yield the cores to training
    try:
        model, facts = _job.deployable(_job.load_model(job_dir, job), job)
    except Exception as error:  # noqa: BLE001 - reported to the caller verbatim
        _emit(
            job_dir,
            {"load_error": f"Could not rebuild the model in the conversion worker: {error}"},
        )
        return 3
    if facts:
        _emit(job_dir, {"facts": facts})
    if strategies == [DESCRIBE]:
        _emit(job_dir, {"described": _job.describe(model)})
        return 0
    if strategies == [JUDGE]:  # `keras-tflite compare`: a given .tflite against the source
        tflite = (job_dir / "model.tflite").read_bytes()
        _emit(job_dir, {"judged": _job.judge(model, tflite, job_dir, job)})
        return 0
    for name in strategies:
        skip = _job.skip_reason(name, model)
        if skip:
            _emit(job_dir, {"attempt": Attempt(name, "skipped", skip).to_json()})
            continue
        _emit(job_dir, {"start": name})
        began = time.time()
        _inject_fault(name)
        try:
            tflite = _job.convert_with(name, model, job_dir, job)
        except Exception as error:  # noqa: BLE001 - a failed strategy is recorded, the next runs
            reason = f"{type(error).__name__}: {_one_line(error)}"
            _emit(job_dir, {"attempt": Attempt(name, "failed", reason, _since(began)).to_json()})
            continue
        (job_dir / "model.tflite").write_bytes(tflite)
        _emit(job_dir, {"attempt": Attempt(name, "converted", "", _since(began)).to_json()})
        if (job_dir / "validation.npz").exists():
            _emit(job_dir, {"judging": name})
            _emit(job_dir, {"judged": _job.judge(model, tflite, job_dir, job)})
        if job.get("layer_errors"):
            _emit(job_dir, {"layers": _job.layer_errors(name, model, job_dir, job)})
        return 0
    return 2


def _die_with_parent() -> None:
    """Stops this worker when the process that started it dies: on Linux the kernel sends
    SIGKILL (PR_SET_PDEATHSIG); elsewhere a thread watches the parent pid twice a second."""
    expected = int(os.environ.get(PARENT_VARIABLE) or os.getppid())
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != expected:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _since(began: float) -> float:
    return round(time.time() - began, 2)


def _one_line(error: Exception) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [repr(error)])[-1][:500]


def _inject_fault(strategy: str) -> None:
    target, _, fault = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if target != strategy:
        return
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault == "hang":
        while True:
            time.sleep(60)
