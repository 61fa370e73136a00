"""How a training run's background exports end: at train end, after a Ctrl-C the user's code
catches, or at interpreter exit after one it does not. Said in words, done once."""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable
from typing import Any

from keras_tflite import caller
from keras_tflite.callbacks.background import LatestWins
from keras_tflite.callbacks.record import ExportRecord
from keras_tflite.worker import supervisor

_ABANDONED = "Ctrl-C stopped it before it finished"


class Wrapup:
    """Ends the exports of one run (a fit, or a TF1 session).

    A Ctrl-C goes first to the handler that was there before (Python's raises the
    KeyboardInterrupt; a script's own may stop training cleanly instead, and then nothing changes
    here). When it raised: the first time, the export under way finishes in the background,
    and a thread prints its result and where the best model is, and closes the exporter (a
    notebook or a script that catches the KeyboardInterrupt hears the outcome); the second time,
    the export is abandoned (its worker is killed and starts nothing else; `history.jsonl` says
    "abandoned"). After an uncaught Ctrl-C, the exit handler waits for the export instead.

    Args:
        queue: The run's background exports.
        pipeline: Its `ExportPipeline` (the store, `cancel`, `abandon`, `close`).
        report: Prints finished records (and any the caller still holds).
        who: The name messages start with.
        close: Closes the exporter. Defaults to `pipeline.close`.
    """

    def __init__(
        self,
        queue: LatestWins,
        pipeline: Any,
        report: Callable[[list[ExportRecord]], None],
        who: str,
        close: Callable[[], None] | None = None,
    ):
        self.queue, self.pipeline, self._report, self.who = queue, pipeline, report, who
        self._close = close or pipeline.close
        self.interrupts = 0
        self._previous: Any = None  # the SIGINT handler before this run's
        self._installed = False
        self._lock = threading.Lock()
        self.closed = False
        self._told_finishing = False

    def start(self) -> None:
        """At train begin, on the training thread: the exit handler, and on the main thread the
        Ctrl-C handler (Python takes signals there only; an ignored SIGINT stays ignored)."""
        atexit.register(self.at_exit)
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        except (ValueError, OSError):  # an embedding interpreter that owns its signals
            pass

    def end(self) -> None:
        """At a normal end, on the training thread: waits for the last export (bounded by the
        queue's patience, after which it is abandoned), then removes this run's handlers. A
        Ctrl-C while waiting is taken like one during training."""
        if not self.queue.wait():
            self.pipeline.cancel(
                f"{self.who} stopped waiting for it after {self.queue.patience:g} s"
            )
            self.queue.wait(30)  # the export's thread records it once its worker is gone
            caller.warn(
                f"{self.who} stopped waiting for its last export after "
                f"{self.queue.patience:g} s and stopped its worker."
            )
        atexit.unregister(self.at_exit)
        self._restore_handler()

    def close(self) -> bool:
        """Closes the exporter once; False when it was closed already."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
        self._close()
        return True

    # ---- Ctrl-C --------------------------------------------------------------------------------

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.closed:
            self._restore_handler()  # on the main thread here, where that is allowed
            _chain(self._previous, signum, frame)
            return
        try:
            _chain(self._previous, signum, frame)
        except KeyboardInterrupt:  # training stops: what happens to the exports is said
            self.interrupts += 1
            try:
                self._interrupted() if self.interrupts == 1 else self._abandon()
            except Exception:  # noqa: BLE001, S110 - never stand between a person and Ctrl-C
                pass
            raise

    def _interrupted(self) -> None:
        snapshot = self.queue.newest()
        message = None
        if snapshot is not None:
            message = (
                f"interrupted; finishing the export of {_unit(snapshot)} in the background "
                "(Ctrl-C again to abandon it)..."
            )
            self._told_finishing = True
            message = self._say_or_defer(message)
        finisher = threading.Thread(
            target=self._finish, args=(message,), name="tflite-export-finish", daemon=True
        )
        finisher.start()

    def _finish(self, deferred: str | None) -> None:
        if deferred is not None:
            self._say(deferred)
        self.queue.wait()
        self._wind_up()

    def _abandon(self) -> None:
        """Stops the export under way and the one waiting, if any: both recorded as abandoned."""
        waiting = self.queue.drop_waiting()
        self.pipeline.cancel(_ABANDONED)
        if waiting is not None:
            self.queue.add_finished(self.pipeline.abandon(waiting))

    def at_exit(self) -> None:
        """At interpreter exit after a run that did not end normally (Keras skips
        `on_train_end` when `fit` raises)."""
        if self.closed:
            return
        try:
            snapshot = self.queue.newest()
            if snapshot is not None and not self._told_finishing:
                self._say(
                    f"finishing the export of {_unit(snapshot)} before exiting (Ctrl-C again to "
                    "abandon it)..."
                )
            self.queue.wait()
        except KeyboardInterrupt:  # a second Ctrl-C while waiting
            if not self.pipeline.abandoned:
                self._abandon()
            self.queue.wait(30)  # the export's thread records it once its worker is gone
        finally:
            self._wind_up()
            supervisor.kill_running()

    def _wind_up(self) -> None:
        """Once: prints what finished, says where the best model is, and closes the exporter."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                records = self.queue.take_finished()
                self._report(records)
                self._say_outcome(records)
            finally:
                atexit.unregister(self.at_exit)
                self._close()

    def _say_outcome(self, records: list[ExportRecord]) -> None:
        manifest = self.pipeline.store.best_manifest()
        if manifest is None:
            where = "no deployable model has been kept"
        else:
            kept = f"epoch {manifest['epoch']}" if manifest["epoch"] else f"step {manifest['step']}"
            where = f"the best model so far ({kept}) is in {self.pipeline.store.best}"
        abandoned = [r.unit for r in records if r.abandoned]
        if abandoned:
            self._say(f"export of {', '.join(abandoned)} abandoned; {where}.")
        elif records:
            self._say(f"exports finished; {where}.")
        elif self.interrupts:  # no export was under way
            self._say(f"interrupted; {where}.")

    def _say(self, text: str) -> None:
        print(f"{self.who}: {text}", flush=True)

    def _say_or_defer(self, text: str) -> str | None:
        """Prints now, in order with the program's output; None once said. Inside a signal
        handler that interrupted a write to stdout, printing raises: the text is returned, for
        a thread to print."""
        try:
            self._say(text)
        except RuntimeError:  # "reentrant call" into the interrupted stream
            return text
        return None

    def _restore_handler(self) -> None:
        if self._installed and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) == self._on_sigint:
                signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def _chain(previous: Any, signum: int, frame: Any) -> None:
    """Passes the signal on as the handler before ours would have taken it."""
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # the default, or a handler installed from C
        signal.default_int_handler(signum, frame)


def _unit(snapshot: Any) -> str:
    return f"epoch {snapshot.count}" if snapshot.epoch >= 0 else f"step {snapshot.step}"
