"""The caller's side of the conversion worker: start it, wait, time it out, classify a crash.

A converter segfault, abort, hang or OOM kills only the worker: the caller records the strategy
as "crashed" or "timed out" and starts a new worker on the next one. What crosses the line is in
`protocol`; the worker's side is `main`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keras_tflite.worker import protocol
from keras_tflite.worker.main import PARENT_VARIABLE
from keras_tflite.worker.protocol import Attempt, Event, Exit

_ENTRY = "import sys; from keras_tflite.worker.main import main; sys.exit(main(sys.argv[1:]))"
# Loading TensorFlow and the model gets this allowance before the first strategy's timeout.
_LOAD_SECONDS = 120


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
    (job_dir / protocol.EVENTS_FILE).unlink(missing_ok=True)
    log_path = job_dir / protocol.LOG_FILE
    with (
        open(log_path, "wb") as log,
        _live(
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
                    # Models trained on JAX or torch are rebuilt on TensorFlow, the converter's.
                    "KERAS_BACKEND": "tensorflow",
                    PARENT_VARIABLE: str(os.getpid()),
                },
            )
        ) as process,
    ):
        timed_out = _wait(process, job_dir, timeout, on_events)
    events = protocol.read_events(job_dir)
    attempts = [Attempt(**a) for a in protocol.every(events, Event.ATTEMPT)]
    load_error = protocol.first(events, Event.LOAD_ERROR)
    if load_error:
        raise RuntimeError(load_error)
    finished = {a.strategy for a in attempts}
    running = next((s for s in protocol.every(events, Event.START) if s not in finished), None)
    if running is not None:
        since = next(e["time"] for e in events if e.get(Event.START.value) == running)
        seconds = round(time.time() - since, 2)
        if timed_out:
            reason = f"no result after {timeout:g} s; the worker was killed"
            attempts.append(Attempt(running, "timed out", reason, seconds))
        else:
            reason = f"the converter process died with {_exit_name(process.returncode)}"
            last = protocol.last_messages(job_dir)
            attempts.append(Attempt(running, "crashed", f"{reason}; last message: {last}", seconds))
    elif process.returncode not in (Exit.DONE, Exit.NOTHING_CONVERTED) and not attempts:
        raise RuntimeError(
            f"The conversion worker exited with {_exit_name(process.returncode)} before "
            "converting: "
            f"{protocol.last_messages(job_dir)}"
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
    process: subprocess.Popen, job_dir: Path, timeout: float, on_events: Callable | None
) -> bool:
    """Waits for the worker; kills it when one strategy runs longer than `timeout` seconds."""
    started_at = time.time()
    while True:
        try:
            process.wait(timeout=0.2)
            return False
        except subprocess.TimeoutExpired:
            pass
        events = protocol.read_events(job_dir)
        if on_events is not None:
            on_events(events)
        starts = [e["time"] for e in events if Event.START.value in e]
        since = starts[-1] if starts else started_at
        if time.time() - since > timeout + (0 if starts else _LOAD_SECONDS):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True


def _exit_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def run_mode(
    job_dir: Path, mode: str, *, timeout: float, on_events: Callable | None = None
) -> dict[str, Any]:
    """Runs the worker in DESCRIBE or JUDGE mode; returns the event it reports."""
    _run_worker(job_dir, [mode], timeout, on_events)
    kind = Event.DESCRIBED if mode == protocol.DESCRIBE else Event.JUDGED
    found = protocol.first(protocol.read_events(job_dir), kind)
    if found is None:
        raise RuntimeError(
            f"The worker could not {mode.lstrip('-')} the model: {protocol.last_messages(job_dir)}"
        )
    return found


def facts(job_dir: Path) -> dict[str, Any]:
    """What the last worker reported about the deployable model (a pruned model's sparsity)."""
    return protocol.first(protocol.read_events(job_dir), Event.FACTS, {})
