"""The export directory: one folder per kept export, the `best` link, and `history.jsonl`.

Every folder is written whole and renamed into place (`deploy.artifacts`), `best` is switched
atomically, and `history.jsonl` never points at a folder that was removed.
"""

from __future__ import annotations

import errno
import shutil
import time
from pathlib import Path
from typing import Any

from keras_tflite.callbacks.record import ExportRecord
from keras_tflite.deploy import artifacts

# Export folders inside the directory: epoch0003-step0000120-<creation time in ns>.
EXPORT_GLOB = "epoch[0-9]*-step[0-9]*"
# A folder being written (`deploy.artifacts.write_model_set`): .epoch0003-...-<uuid>.partial
PARTIAL_GLOB = ".epoch[0-9]*-step[0-9]*.partial"


class Store:
    """Writes kept exports into `directory` and forgets the ones it may drop.

    Args:
        directory: The callback's directory.
        save_best_only: Keep only the best export's folder.
        keep_last: Without `save_best_only`, how many folders to keep besides the best (None:
            all).
    """

    def __init__(self, directory: Path, *, save_best_only: bool, keep_last: int | None):
        self.directory = directory
        self.save_best_only, self.keep_last = save_best_only, keep_last
        self._opened = time.time()
        self._swept = False

    @property
    def best(self) -> Path:
        return self.directory / "best"

    @property
    def history(self) -> Path:
        return self.directory / "history.jsonl"

    def best_manifest(self) -> dict[str, Any] | None:
        """The current best's manifest (a resumed run only replaces it with a better model)."""
        return artifacts.read_manifest(self.best)

    def keep(
        self,
        record: ExportRecord,
        tflite: bytes,
        manifest: dict[str, Any],
        files: dict[str, str],
        c_symbol: str,
    ) -> Path:
        """Writes the export's folder; points `best` at it when it is the new best; prunes."""
        name = f"epoch{record.epoch:04d}-step{record.step:07d}-{time.time_ns()}"
        target = self.directory / name
        self._sweep_partials()
        artifacts.write_model_set(target, tflite, manifest, c_symbol=c_symbol, extra_files=files)
        if record.new_best:
            previous = self.best.resolve() if self.best.is_symlink() else None
            try:
                artifacts.point_link(self.best, target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)  # not the best, in no record: it goes
                raise
            if self.save_best_only and previous is not None and previous != target.resolve():
                self._remove(previous, "replaced by a better best (save_best_only)")
        if not self.save_best_only and self.keep_last is not None:
            self._prune()
        return target

    def append(self, record: ExportRecord) -> None:
        artifacts.append_line(self.history, record.to_json())

    def disk_full_reason(self, error: OSError, what: str) -> str:
        """Why `what` was not written, in words: which folder is full, what the export needs
        (`error.needed_bytes`, when known), and whether the best so far is safe."""
        quota = error.errno == errno.EDQUOT
        full = "the disk quota is used up" if quota else "the disk is full"
        needed = getattr(error, "needed_bytes", None)
        size = "" if needed is None else f", {needed / 1024:.1f} KB in all"
        best = self.best_manifest()
        if best is None:
            kept = "no export has been kept yet"
        else:
            value = "" if best.get("value") is None else f", {best['monitor']} {best['value']:.4g}"
            when = f"epoch {best['epoch']}" if best.get("epoch") else f"step {best.get('step')}"
            kept = f"the best so far ({when}{value}) is intact in {self.best}"
        return (
            f"{full}: no space left in {self.directory} for {what}{size}; {kept}. "
            "Exports resume by themselves once space is freed"
        )

    def _sweep_partials(self) -> None:
        """Removes half-written folders that an earlier run left behind (a crash, or a full disk
        before keras-tflite removed them itself): they only hold space."""
        if self._swept:
            return
        self._swept = True
        for folder in self.directory.glob(PARTIAL_GLOB):
            try:
                if folder.is_dir() and folder.stat().st_mtime < self._opened:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    def _prune(self) -> None:
        """Keeps the newest `keep_last` export folders besides the best one."""
        kept = self.best.resolve() if self.best.is_symlink() else None
        folders = sorted(
            (p for p in self.directory.glob(EXPORT_GLOB) if p.is_dir()),
            key=lambda p: p.name.rsplit("-", 1)[-1],  # creation time: runs may resume at epoch 1
        )
        others = [p for p in folders if p.resolve() != kept]
        for folder in others[: max(0, len(others) - self.keep_last)]:
            self._remove(folder, f"keep_last={self.keep_last}")

    def _remove(self, folder: Path, why: str) -> None:
        """Removes an export folder; history.jsonl stops pointing at it and says why."""
        shutil.rmtree(folder, ignore_errors=True)
        artifacts.mark_removed(self.history, str(folder), why)
