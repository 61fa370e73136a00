"""A full disk under the export folder, for real (a small tmpfs): training goes on, nothing
half-written stays behind, the user is told once, and exports resume when space returns."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import build, sample_inputs

from keras_tflite import TFLiteExportCallback
from keras_tflite.deploy.artifacts import append_line, read_manifest

# One export of the 8-feature MLP takes about 40 KB of tmpfs pages (six files, the C array
# four pages). With the filler in place about 70 KB are free: the first export fits, the next
# ones do not; without it about 120 KB are.
DISK_KB, FILLER_KB = 128, 56


@pytest.fixture
def small_disk(tmp_path):
    """A real 128 KB filesystem, with a 56 KB filler file on it."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_KB}k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * FILLER_KB * 1024)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


class _FreeSpace(keras.callbacks.Callback):
    """Removes the filler at the end of one epoch, before that epoch's export is written."""

    def __init__(self, filler, epoch):
        super().__init__()
        self.filler, self.epoch = filler, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.filler.unlink()


def test_a_history_line_that_does_not_fit_leaves_no_torn_line(small_disk):
    history = small_disk / "history.jsonl"
    append_line(history, {"epoch": 1, "note": "x" * 4000})  # most of a 4 KB page
    with open(small_disk / "rest", "wb", buffering=0) as rest:  # every other page
        try:
            while True:
                rest.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OSError, match="No space left"):
        append_line(history, {"epoch": 2, "note": "y" * 1000})  # needs a second page
    (small_disk / "rest").unlink()
    append_line(history, {"epoch": 3})
    lines = history.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 3]


@pytest.mark.slow  # real conversions and training
def test_a_full_disk_leaks_nothing_is_said_once_and_exports_resume(small_disk, tmp_path, capsys):
    x = sample_inputs(build("mlp"), 120)["features"]
    y = (x[:, :1] * 0.5).astype(np.float32)
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    exports = small_disk / "exports"
    callback = TFLiteExportCallback(
        exports,
        (x[:90], y[:90]),
        (x[90:], y[90:]),
        blocking=True,
        save_best_only=False,  # every export writes a folder
        log_dir=tmp_path / "logs",
    )
    # Epochs 2 and 3 find the disk full; space returns before epoch 4's export.
    free = _FreeSpace(small_disk / "filler", epoch=3)
    history = model.fit(x, y, epochs=4, callbacks=[free, callback], verbose=0)
    assert len(history.history["loss"]) == 4  # the fit went on

    assert not list(exports.glob(".*partial")), "a failed write left its partial folder"
    records = [json.loads(line) for line in (exports / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[0]["path"] and records[3]["path"]
    first = Path(records[0]["path"])
    one_set = sum(f.stat().st_size for f in first.iterdir()) / 1024
    for failed in records[1:3]:
        assert failed["path"] is None
        assert failed["reason"].startswith(f"the disk is full: no space left in {exports}")
        needed = float(re.search(r"([0-9.]+) KB in all", failed["reason"]).group(1))
        assert needed == pytest.approx(one_set, rel=0.02)  # what the export needs
        assert (
            f"the best so far (epoch 1, tflite_val_loss {records[0]['value']:.4g})"
            in (failed["reason"])
        )
    # best/ is intact throughout; the export written after space returned landed whole.
    best = read_manifest(exports / "best")
    assert best is not None and best["epoch"] in (1, 4)
    assert read_manifest(records[3]["path"])["epoch"] == 4

    out = capsys.readouterr().out
    assert out.count("the disk is full") == 1, out
    assert out.count(f"no space left in {exports}") == 1
    assert "Epoch 3: export failed: the disk is still full" in out
    assert out.count("writing works again") == 1
