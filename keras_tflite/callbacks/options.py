"""Checks of the callback's options, made at construction: errors before training starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keras_tflite.callbacks.monitor import check_mode
from keras_tflite.callbacks.schedule import check_freq
from keras_tflite.deploy.artifacts import c_array
from keras_tflite.quantization import check_mode as check_quantization


def checked(given: dict[str, Any]) -> dict[str, Any]:
    """The constructor's arguments, each checked (raising ValueError that names it)."""
    options = dict(given)
    check_quantization(options["quantization"])
    check_freq(options["export_freq"])
    _positive_int(options["every_n_epochs"], "every_n_epochs")
    check_mode(options["mode"])
    if options["keep_last"] is not None:
        _positive_int(options["keep_last"], "keep_last")
    c_array(b"", options["c_symbol"])  # a C identifier, checked now rather than after training
    options["min_delta"] = abs(options["min_delta"])
    return options


def _positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}.")


def check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(
            f"Expected directory to be a writable folder. Received: {str(directory)!r} "
            f"({error.strerror})."
        ) from error
