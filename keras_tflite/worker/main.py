"""The worker process: loads the model once, then converts, judges or describes it.

Started by `supervisor` as `python -c ... JOB_DIR MODE...`; reports through `protocol`'s events.
A converter segfault, abort, hang or OOM kills only this process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import Attempt, Event, Exit

# Set by tests to inject a real fault into a real worker: "<strategy>:segfault" or ":hang".
FAULT_VARIABLE = "KERAS_TFLITE_INJECT_FAULT"
# The parent's pid: a worker whose parent is gone stops (it must never outlive training).
PARENT_VARIABLE = "KERAS_TFLITE_PARENT_PID"


def main(argv: list[str]) -> int:
    """The worker's entry point: `JOB_DIR STRATEGY...`, or `JOB_DIR --describe|--judge`."""
    from keras_tflite.worker import conversion, judge, load

    die_with_parent()
    job_dir, modes = Path(argv[0]), argv[1:]
    job = protocol.Job.read(job_dir)
    os.nice(job.niceness)  # exports during training yield the cores to training
    try:
        model, facts = load.deployable(load.load_model(job_dir, job), job)
    except Exception as error:  # noqa: BLE001 - reported to the caller verbatim
        message = f"Could not rebuild the model in the conversion worker: {error}"
        protocol.emit(job_dir, Event.LOAD_ERROR, message)
        return Exit.LOAD_FAILED
    if facts:
        protocol.emit(job_dir, Event.FACTS, facts)
    if modes == [protocol.DESCRIBE]:
        protocol.emit(job_dir, Event.DESCRIBED, load.describe(model))
        return Exit.DONE
    if modes == [protocol.JUDGE]:  # `keras-tflite compare`: a given .tflite against the source
        tflite = (job_dir / protocol.MODEL_FILE).read_bytes()
        protocol.emit(job_dir, Event.JUDGED, judge.judge(model, tflite, job_dir, job))
        return Exit.DONE
    for name in modes:
        skip = conversion.skip_reason(name, model)
        if skip:
            protocol.emit(job_dir, Event.ATTEMPT, Attempt(name, "skipped", skip).to_json())
            continue
        protocol.emit(job_dir, Event.START, name)
        began = time.time()
        _inject_fault(name)
        try:
            tflite = conversion.convert_with(name, model, job_dir, job)
        except Exception as error:  # noqa: BLE001 - a failed strategy is recorded, the next runs
            reason = f"{type(error).__name__}: {_one_line(error)}"
            attempt = Attempt(name, "failed", reason, _since(began))
            protocol.emit(job_dir, Event.ATTEMPT, attempt.to_json())
            continue
        (job_dir / protocol.MODEL_FILE).write_bytes(tflite)
        attempt = Attempt(name, "converted", "", _since(began))
        protocol.emit(job_dir, Event.ATTEMPT, attempt.to_json())
        if (job_dir / protocol.VALIDATION_FILE).exists():
            protocol.emit(job_dir, Event.JUDGING, name)
            protocol.emit(job_dir, Event.JUDGED, judge.judge(model, tflite, job_dir, job))
        if job.layer_errors:
            protocol.emit(job_dir, Event.LAYERS, conversion.layer_errors(name, model, job_dir, job))
        return Exit.DONE
    return Exit.NOTHING_CONVERTED


def die_with_parent() -> None:
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
