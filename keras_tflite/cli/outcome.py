"""How a `keras-tflite` command ends: its exit codes, and the error that means "your input"."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The command's exit codes (the module docstring says when each is used)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_ON_MICRO = 3
    NOT_FAITHFUL = 4


class UsageError(ValueError):
    """Bad arguments or data: exit code 2."""
