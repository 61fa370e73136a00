"""Checks of the callback's options, made at construction: errors before training starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keras_tflite.board import Board
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
    return _with_board(options)


def _with_board(options: dict[str, Any]) -> dict[str, Any]:
    """`target` as a `Target`, whose flash and RAM are the budgets not given; `kernels` and
    `max_latency_ms`, which needs a target whose core the estimate models."""
    board = Board.of(options["target"], options["kernels"])
    options["target"] = target = board.target
    latency = options["max_latency_ms"]
    if latency is not None:
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency <= 0:
            raise ValueError(
                f"Expected max_latency_ms to be a positive number. Received: {latency!r}."
            )
        if target is None or not target.modelled:
            raise ValueError(
                "Expected target= a board whose core the estimate models (Cortex-M3, M4 or "
                "M55) for max_latency_ms, which turns instructions into time with its clock. "
                f"Received: target={None if target is None else target.name!r}."
            )
        if not board.estimated:
            raise ValueError(
                f"Expected kernels='cmsis_nn' or None for max_latency_ms on a {target.core} "
                "(instructions are estimated for the reference kernels on a Cortex-M4 only). "
                f"Received: kernels={options['kernels']!r}."
            )
    if target is not None:
        options["max_model_bytes"] = options["max_model_bytes"] or target.flash_bytes
        options["max_arena_bytes"] = options["max_arena_bytes"] or target.ram_bytes
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
