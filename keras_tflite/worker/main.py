"""The worker process: loads a model once, then converts, judges or describes it job after job.

Started by `supervisor`, it reads one job per line on stdin and reports through `protocol`'s
events. A converter segfault, abort, hang or OOM kills only this process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import PARENT_VARIABLE, Attempt, Event, Exit

# Set by tests to inject a real fault into a real worker: "<strategy>:segfault" or ":hang", or
# "judge-<runtime>:segfault" as a runtime ("litert", "micro") starts judging the model.
FAULT_VARIABLE = "KERAS_TFLITE_INJECT_FAULT"


def main(argv: list[str]) -> int:
    """The worker's entry point: `[NICENESS]`, then one job per line on stdin (`{"job_dir":
    ..., "modes": [...]}`, and for a JUDGE job the runtimes that crashed an earlier worker
    judging it: `"crashed": {runtime: how}`), each answered with events ending in DONE, until
    stdin closes."""
    die_with_parent()
    os.nice(int(argv[0]) if argv else 0)  # exports during training yield the cores to training
    import tensorflow  # noqa: F401 - every job needs it: imported while the caller prepares one

    models = ModelCache()
    for line in sys.stdin:
        request = json.loads(line)
        job_dir = Path(request["job_dir"])
        print(f"{protocol.JOB_MARKER} {job_dir}", flush=True)
        code = handle(job_dir, request["modes"], models, request.get("crashed"))
        protocol.emit(job_dir, Event.DONE, {"exit": int(code), "rss_mb": _rss_mb()})
        sys.stdout.flush()
    return Exit.DONE


class ModelCache:
    """The model this worker rebuilt, by the caller's key (loaded once per worker), and its
    re-quantization templates by strategy (a template, or why there is none)."""

    def __init__(self):
        self._key: str | None = None
        self._model: Any = None
        self.templates: dict[str, Any] = {}

    def get(self, job_dir: Path, job: protocol.Job) -> Any:
        from keras_tflite.worker import load

        if job.model_key is None:
            return load.rebuild(job_dir, job)
        if job.model_key != self._key:  # one model at a time: a new one replaces the last
            self._key, self._model, self.templates = None, load.rebuild(job_dir, job), {}
            self._key = job.model_key
        return self._model


def handle(
    job_dir: Path, modes: list[str], models: ModelCache, crashed: dict[str, str] | None = None
) -> Exit:
    """Carries out one job: convert with the first strategy that works (and judge), describe
    the model, or judge a given .tflite against it (without the runtimes in `crashed`)."""
    from keras_tflite.worker import conversion, load

    job = protocol.Job.read(job_dir)
    try:
        model, facts = load.deployable(load.with_weights(models.get(job_dir, job), job_dir), job)
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
        protocol.emit(job_dir, Event.JUDGED, _judge(model, tflite, job_dir, job, crashed))
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
            converted = _convert(name, model, job_dir, job, models.templates)
        except Exception as error:  # noqa: BLE001 - a failed strategy is recorded, the next runs
            reason = "; ".join(
                [f"{type(error).__name__}: {_one_line(error)}", *getattr(model, "notes", [])]
            )  # a graph's notes say which recurrent loops were left as loops, and why
            attempt = Attempt(name, "failed", reason, _since(began))
            protocol.emit(job_dir, Event.ATTEMPT, attempt.to_json())
            continue
        tflite = converted.tflite
        (job_dir / protocol.MODEL_FILE).write_bytes(tflite)
        attempt = Attempt(name, "converted", "", _since(began))
        protocol.emit(job_dir, Event.ATTEMPT, attempt.to_json())
        protocol.emit(job_dir, Event.PATH, {"path": converted.path, "note": converted.note})
        if job.verify and _verified(name, tflite, job_dir, job, models.templates):
            return Exit.DONE  # the candidate stands: nothing new to judge
        if (job_dir / protocol.VALIDATION_FILE).exists():
            protocol.emit(job_dir, Event.JUDGING, name)
            protocol.emit(job_dir, Event.JUDGED, _judge(model, tflite, job_dir, job))
        if job.layer_errors:
            protocol.emit(job_dir, Event.LAYERS, conversion.layer_errors(name, model, job_dir, job))
        return Exit.DONE
    return Exit.NOTHING_CONVERTED


def _judge(model, tflite, job_dir, job, crashed=None) -> dict:
    from keras_tflite.worker import judge

    def before(runtime: str) -> None:
        _inject_fault(f"judge-{runtime}")

    return judge.judge(model, tflite, job_dir, job, crashed=crashed, before=before)


def _convert(name, model, job_dir, job, templates):
    from keras_tflite.worker import conversion

    if job.verify:  # in full, whatever the templates hold
        return conversion.Converted(conversion.convert_with(name, model, job_dir, job).tflite)
    return conversion.convert_with(name, model, job_dir, job, templates)


def _verified(name, tflite, job_dir, job, templates) -> bool:
    """Whether the candidate is what the full conversion `tflite` is (else the template goes:
    the fit converts in full from now on)."""
    from keras_tflite.worker import conversion

    candidate = (job_dir / protocol.CANDIDATE_FILE).read_bytes()
    difference = conversion.differs(candidate, tflite, job_dir, job)
    report = {"difference": difference, "identical": candidate == tflite}
    protocol.emit(job_dir, Event.VERIFIED, report)
    if difference is not None:
        templates[name] = f"a re-quantized snapshot differed from its full conversion: {difference}"
    return difference is None


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


# Converter advice for desktops and phones: TFLite Micro runs builtin ops only, so a person
# deploying to a microcontroller must never be sent to Select TF ops (Flex) or custom ops.
_DESKTOP_ADVICE = ("select tf ops", "select_tf_ops", "tf select", "flex", "lower_tensor_list")
_MISSING_OPS = re.compile(r"(?:TF Select|Flex|Custom) ops: (.+)")
_LOCATION = re.compile(r"^(?:(?:<unknown>:\d+|loc\(.*?\)):\s*(?:error:\s*)?)+")


def _one_line(error: Exception) -> str:
    """The error's telling line, in a microcontroller's terms: no MLIR dump, no advice that
    only holds with TensorFlow's own kernels."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    missing = [m.group(1) for m in map(_MISSING_OPS.search, lines) if m]
    if missing:
        return f"TFLite has no builtin op for {', '.join(missing)} (TFLite Micro runs no others)"
    if any("Lowering tensor list ops" in line for line in lines):
        return "a recurrent layer's loop (tensor lists) has no form in TFLite's builtin ops"
    errors = [ln for ln in lines if "error" in ln.lower()]
    line = _LOCATION.sub("", (errors or lines or [repr(error)])[-1])
    sentences = re.split(r"(?<=[.;])\s+", line)
    kept = [s for s in sentences if not any(a in s.lower() for a in _DESKTOP_ADVICE)]
    return " ".join(kept)[:500] or "the converter needs ops TFLite Micro does not have"


def _inject_fault(strategy: str) -> None:
    target, _, fault = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if target != strategy:
        return
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault == "hang":
        while True:
            time.sleep(60)
