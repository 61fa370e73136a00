"""Checks of the callback's options, made at construction: errors before training starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _check_freq(export_freq: Any) -> str | int:
    if export_freq in ("epoch", "improvement") or (
        isinstance(export_freq, int) and not isinstance(export_freq, bool) and export_freq > 0
    ):
        return export_freq
    raise ValueError(
        "Expected export_freq to be 'epoch', 'improvement' or a positive number of batches. "
        f"Received: {export_freq!r}."
    )


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(
            f"Expected directory to be a writable folder. Received: {str(directory)!r} ({error.strerror})."
        ) from error


def _comparison(mode: str, monitor: str):
    maximize = mode == "max" or (
        mode == "auto" and any(k in monitor for k in ("acc", "auc", "cosine", "snr", "agreement"))
    )
    if maximize:
        return lambda value, best, delta: value - delta > best
    return lambda value, best, delta: value + delta < best
