"""Background exports, latest wins: one thread, one waiting snapshot, dropped ones counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class LatestWins:
    """Processes snapshots on a daemon thread, one at a time. A snapshot still waiting when a
    newer one arrives is dropped: the next one processed lists the dropped epochs under
    `skipped_epochs`, so the person training hears of them.

    The thread is a daemon so that an interrupted `fit` is not held at exit by Python's thread
    join; the callback's exit handler decides whether to wait for it.
    """

    def __init__(self, process: Callable[[Any], Any], patience: float):
        self._process = process
        self.patience = patience  # seconds `wait` waits by default
        # Re-entrant: a Ctrl-C handler may read the queue while the thread it interrupted holds it.
        self._lock = threading.RLock()
        self._pending: Any = None
        self._skipped: list[int] = []
        self._finished: list[Any] = []
        self._thread: threading.Thread | None = None
        self.current: Any = None  # the snapshot being processed

    def submit(self, snapshot: Any) -> None:
        """Queues a snapshot (with `.count`, its epoch or step, and `.skipped_epochs`), dropping
        a waiting one."""
        with self._lock:
            if self._pending is not None:
                self._skipped.append(self._pending.count)
            self._pending = snapshot
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tflite-export", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                snapshot, self._pending = self._pending, None
                self.current = snapshot
                if snapshot is None:
                    self._thread = None  # a later submit starts a new thread
                    return
                snapshot.skipped_epochs, self._skipped = self._skipped, []
            record = self._process(snapshot)
            with self._lock:
                self._finished.append(record)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def add_finished(self, record: Any) -> None:
        """A record made elsewhere (a waiting snapshot abandoned), reported with the others."""
        with self._lock:
            self._finished.append(record)

    def take_finished(self) -> list[Any]:
        with self._lock:
            finished, self._finished = self._finished, []
        return finished

    def wait(self, timeout: float | None = None) -> bool:
        """Waits for every submitted snapshot; False when `timeout` seconds (default:
        `patience`) were not enough. Interruptible: a KeyboardInterrupt reaches the caller."""
        deadline = time.monotonic() + (self.patience if timeout is None else timeout)
        while self.busy:
            with self._lock:
                thread = self._thread
            if thread is None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            thread.join(min(remaining, 0.25))
        return True

    def newest(self) -> Any:
        """The snapshot the queue will end with: the waiting one, else the one being processed;
        None when idle."""
        with self._lock:
            return self._pending or (self.current if self._thread is not None else None)

    def drop_waiting(self) -> Any:
        """Takes the waiting snapshot out of the queue (None when there is none)."""
        with self._lock:
            snapshot, self._pending = self._pending, None
        return snapshot
