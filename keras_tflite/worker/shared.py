"""The worker that `convert()` calls share: TensorFlow is imported once per process, not once per
call. It stops after `IDLE_SECONDS` without a call, and with this process."""

from __future__ import annotations

import atexit
import threading

from keras_tflite.worker import supervisor

IDLE_SECONDS = 120.0

_lock = threading.Lock()
_worker: supervisor.Worker | None = None
_in_use = 0
_timer: threading.Timer | None = None


def take() -> supervisor.Worker:
    """The shared worker, started (it imports TensorFlow while the caller prepares its job).
    Pair each call with `give_back()`."""
    global _worker, _in_use
    with _lock:
        _in_use += 1
        if _timer is not None:
            _timer.cancel()
        if _worker is None:
            _worker = supervisor.Worker()
            atexit.register(_worker.close)
        _worker.start()
        return _worker


def current() -> supervisor.Worker | None:
    """The shared worker, when one is running or idle."""
    return _worker


def give_back() -> None:
    global _in_use, _timer
    with _lock:
        _in_use -= 1
        if _in_use == 0:
            _timer = threading.Timer(IDLE_SECONDS, _close_idle)
            _timer.daemon = True
            _timer.start()


def stop() -> None:
    """Stops the shared worker now, unless a call is using it (the next call starts another)."""
    _close(lambda: True)


def _close_idle() -> None:
    timer = threading.current_thread()
    _close(lambda: timer is _timer)  # else taken again since


def _close(still_wanted) -> None:
    global _worker
    with _lock:
        if _in_use or not still_wanted():
            return
        worker, _worker = _worker, None
        if _timer is not None:
            _timer.cancel()
    if worker is not None:
        atexit.unregister(worker.close)
        worker.close()
