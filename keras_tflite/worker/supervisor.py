"""The caller's side of the conversion worker: one process kept across jobs, restarted when a job
crashes it, times out, or it has grown too old or too large.

A converter segfault, abort, hang or OOM kills only the worker: the caller records the strategy
as "crashed" or "timed out", and the next job (or the next strategy) gets a new worker. What
crosses the line is in `protocol`; the worker's side is `main`.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keras_tflite.worker import protocol
from keras_tflite.worker.protocol import LOG_VARIABLE, PARENT_VARIABLE, Attempt, Event, Exit

_ENTRY = "import sys; from keras_tflite.worker.main import main; sys.exit(main(sys.argv[1:]))"
# Loading TensorFlow and the model gets this allowance before the first strategy's timeout.
_LOAD_SECONDS = 120
# A worker is replaced after this many jobs, or once its memory grew this much past what it used
# after its first job: the converter leaks a little per call (0.5 MB per conversion measured).
MAX_JOBS = 200
MAX_RSS_GROWTH_MB = 1024.0


class Cancelled(RuntimeError):
    """The caller gave up on the worker's jobs (`Worker.cancel`): no process is started again."""


class Worker:
    """A worker process, started on the first job and kept for the next ones.

    Args:
        niceness: CPU priority the worker lowers itself by (background exports yield the cores
            to training). Defaults to 0.
        max_jobs: Jobs before the worker is replaced. Defaults to `MAX_JOBS`.
        max_rss_growth_mb: Memory growth past its first job's before it is replaced. Defaults to
            `MAX_RSS_GROWTH_MB`.
    """

    def __init__(
        self,
        *,
        niceness: int = 0,
        max_jobs: int = MAX_JOBS,
        max_rss_growth_mb: float = MAX_RSS_GROWTH_MB,
    ):
        self.niceness, self.max_jobs, self.max_rss_growth_mb = niceness, max_jobs, max_rss_growth_mb
        self._dir = Path(tempfile.mkdtemp(prefix="keras_tflite_worker_"))
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one job at a time
        self.started = 0  # processes started, for the curious and the tests
        self.rss_mb: float | None = None  # the worker's peak memory after its last job
        self._started_with: dict[str, str] = {}
        self._jobs = 0
        self._first_rss: float | None = None
        self._cancelled: str | None = None  # why the caller gave up, once it did

    @property
    def log_path(self) -> Path:
        return self._dir / protocol.LOG_FILE

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def run(
        self,
        job_dir: Path,
        strategies: list[str],
        *,
        timeout: float,
        on_events: Callable | None = None,
    ) -> list[Attempt]:
        """Runs the strategies in order until one converts; a strategy that crashes or hangs
        the worker is recorded and the next one runs in a new worker."""
        attempts: list[Attempt] = []
        remaining = list(strategies)
        while remaining:
            outcome = self._attempts(job_dir, remaining, timeout, on_events)
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

    def run_mode(
        self, job_dir: Path, mode: str, *, timeout: float, on_events: Callable | None = None
    ) -> dict[str, Any]:
        """Runs a DESCRIBE or JUDGE job; returns the event it reports."""
        kind = Event.DESCRIBED if mode == protocol.DESCRIBE else Event.JUDGED
        events, timed_out, code = self.request(job_dir, [mode], timeout, on_events)
        if code is not None and not timed_out:
            events = self._judge_again(job_dir, events, code, timeout, on_events)
        _raise_load_error(events)
        found = protocol.first(events, kind)
        if found is None:
            raise RuntimeError(
                f"The worker could not {mode.lstrip('-')} the model: "
                f"{protocol.last_messages(self.log_path)}"
            )
        return found

    def request(
        self,
        job_dir: Path,
        modes: list[str],
        timeout: float,
        on_events: Callable | None = None,
        crashed: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool, int | None]:
        """Sends one job and waits for it: (its events, whether it timed out, the worker's exit
        code when the job ended it). A JUDGE job after a crash names the runtimes that `crashed`
        the worker; its events follow the crashed job's."""
        with self._lock:
            if self._cancelled:  # not a crash to retry: the caller stopped the job
                raise Cancelled(self._cancelled)
            if crashed is None:
                (job_dir / protocol.EVENTS_FILE).unlink(missing_ok=True)
            process = self._running()
            request = {"job_dir": str(job_dir), "modes": modes}
            try:
                line = json.dumps(request | ({"crashed": crashed} if crashed else {})) + "\n"
                process.stdin.write(line.encode())
                process.stdin.flush()
            except OSError:  # it died between jobs: the wait below sees it
                pass
            timed_out = _wait(process, job_dir, timeout, on_events)
            events = protocol.read_events(job_dir)
            done = protocol.first(events, Event.DONE)
            if done is None:  # crashed or killed: the next job gets a new worker
                self._stop(process)
                return events, timed_out, process.returncode
            self._jobs += 1
            self.rss_mb = done["rss_mb"]
            self._first_rss = self._first_rss or done["rss_mb"]
            grown = done["rss_mb"] - self._first_rss
            if self._jobs >= self.max_jobs or grown > self.max_rss_growth_mb:
                self._stop(process, gently=True)  # recycled: the next job starts afresh
            return events, False, None

    def _attempts(self, job_dir, strategies, timeout, on_events) -> list[Attempt]:
        events, timed_out, code = self.request(job_dir, strategies, timeout, on_events)
        attempts = [Attempt(**a) for a in protocol.every(events, Event.ATTEMPT)]
        _raise_load_error(events)
        finished = {a.strategy for a in attempts}
        running = next((s for s in protocol.every(events, Event.START) if s not in finished), None)
        if running is not None and code is not None or timed_out:
            since = next(
                (e["time"] for e in events if e.get(Event.START.value) == running), time.time()
            )
            seconds = round(time.time() - since, 2)
            if timed_out:
                reason = f"no result after {timeout:g} s; the worker was killed"
                attempts.append(Attempt(running or strategies[0], "timed out", reason, seconds))
            else:
                last = protocol.last_messages(self.log_path)
                reason = f"the converter process died with {_exit_name(code)}; last message: {last}"
                attempts.append(Attempt(running, "crashed", reason, seconds))
        elif code is not None and not attempts:
            raise RuntimeError(
                f"The conversion worker exited with {_exit_name(code)} before converting: "
                f"{protocol.last_messages(self.log_path)}"
            )
        elif code is not None:
            self._judge_again(job_dir, events, code, timeout, on_events)
        return attempts

    def _judge_again(self, job_dir, events, code, timeout, on_events) -> list[dict[str, Any]]:
        """When the worker died while a runtime was judging the model (a segfault in LiteRT or
        TFLite Micro), judges it again in a new worker without that runtime, so that the other
        runtime's verdict stands. Returns the job's events, the new judgement's included."""
        crashed: dict[str, str] = {}
        runtime = protocol.crashed_runtime(events)
        while code is not None and runtime is not None and runtime not in crashed:
            crashed[runtime] = _exit_name(code)
            events, timed_out, code = self.request(
                job_dir, [protocol.JUDGE], timeout, on_events, crashed=dict(crashed)
            )
            runtime = None if timed_out else protocol.crashed_runtime(events)
        return events

    def start(self) -> None:
        """Starts the worker process now (it imports TensorFlow while the caller prepares the
        first job); jobs start it anyway when it is not running."""
        with self._lock:
            self._running()

    def _running(self) -> subprocess.Popen:
        environment = self._environment()
        if self._process is not None and self._process.poll() is None:
            if environment == self._started_with:
                return self._process
            self._stop(self._process, gently=True)  # the caller's environment changed since
        self._started_with = environment
        self._process = _LAUNCHER.start(self._command(), environment, self.log_path)
        self.started += 1
        self._jobs, self._first_rss = 0, None
        return self._process

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _ENTRY, str(self.niceness)]

    def _environment(self) -> dict[str, str]:
        return {
            # The worker never joins a tf.distribute cluster its parent trains in.
            **{k: v for k, v in os.environ.items() if k != "TF_CONFIG"},
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1"),
            # Models trained on JAX or torch are rebuilt on TensorFlow, the converter's.
            "KERAS_BACKEND": "tensorflow",
            PARENT_VARIABLE: str(os.getpid()),
            LOG_VARIABLE: str(self.log_path),
        }

    def _stop(self, process: subprocess.Popen, gently: bool = False) -> None:
        if gently and process.poll() is None:
            try:
                process.stdin.close()  # no more jobs: the worker's loop ends
                process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            _kill(process)
        if self._process is process:
            self._process = None

    def cancel(self, why: str) -> None:
        """Stops the job under way and every later one (from any thread, without waiting for
        the job): its process is killed, and no strategy or re-judging starts another; the
        job ends with `Cancelled(why)`."""
        self._cancelled = why
        process = self._process
        if process is not None and process.poll() is None:
            _kill(process)

    def close(self) -> None:
        """Stops the worker and removes its folder."""
        if self._cancelled:
            self.cancel(self._cancelled)  # the job holding the lock then ends at once
        with self._lock:
            if self._process is not None:  # one that never had a job has nothing to finish
                self._stop(self._process, gently=self._jobs > 0)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Launcher:
    """Starts every worker from one long-lived thread. On Linux a worker dies with the thread that
    started it (PR_SET_PDEATHSIG): this thread lives as long as the process, so a worker dies
    with its parent, and not with whichever short-lived thread sent its first job."""

    def __init__(self):
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="keras-tflite-launcher", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put((command, env, log, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            command, env, log, future = self._requests.get()
            try:
                with open(log, "ab") as sink:
                    process = subprocess.Popen(
                        command,
                        stdin=subprocess.PIPE,
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # a Ctrl-C in the terminal does not reach it
                        env=env,
                    )
                with self._lock:
                    self.running = {p for p in self.running if p.poll() is None} | {process}
                future.set_result(process)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)


_LAUNCHER = _Launcher()


def kill_running() -> int:
    """Kills every worker this process started that is still running; returns how many."""
    with _LAUNCHER._lock:
        running = [p for p in _LAUNCHER.running if p.poll() is None]
    for process in running:
        _kill(process)
    return len(running)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _wait(
    process: subprocess.Popen, job_dir: Path, timeout: float, on_events: Callable | None
) -> bool:
    """Waits for the job's DONE event or the worker's end; kills the worker when one strategy
    runs longer than `timeout` seconds. Returns whether it timed out."""
    started_at = time.time()
    while True:
        events = protocol.read_events(job_dir)
        if on_events is not None:
            on_events(events)
        if protocol.first(events, Event.DONE) is not None:
            return False
        try:
            process.wait(timeout=0.05 if len(events) else 0.2)
            return False  # it ended without finishing the job: a crash
        except subprocess.TimeoutExpired:
            pass
        # A job judged again after a crash follows the crashed job's events: not its clock.
        starts = [e["time"] for e in events if Event.START.value in e and e["time"] >= started_at]
        since = starts[-1] if starts else started_at
        if time.time() - since > timeout + (0 if starts else _LOAD_SECONDS):
            _kill(process)
            return True


def _raise_load_error(events: list[dict[str, Any]]) -> None:
    load_error = protocol.first(events, Event.LOAD_ERROR)
    if load_error:
        raise RuntimeError(load_error)


def _exit_name(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def run(
    job_dir: Path,
    strategies: list[str],
    *,
    timeout: float,
    on_events: Callable | None = None,
    worker: Worker | None = None,
) -> list[Attempt]:
    """`Worker.run` on `worker`, or on a worker of its own that is stopped afterwards."""
    if worker is not None:
        return worker.run(job_dir, strategies, timeout=timeout, on_events=on_events)
    with Worker() as own:
        return own.run(job_dir, strategies, timeout=timeout, on_events=on_events)


def facts(job_dir: Path) -> dict[str, Any]:
    """What the worker reported about the deployable model (a pruned model's sparsity)."""
    return protocol.first(protocol.read_events(job_dir), Event.FACTS, {})


__all__ = ["Cancelled", "Exit", "MAX_JOBS", "Worker", "facts", "kill_running", "run"]
