"""How a `keras-tflite` command ends: its exit codes, what each means per command, and the error
that means "your input"."""

from __future__ import annotations

import enum
import textwrap


class ExitCode(enum.IntEnum):
    """The command's exit codes (`MEANINGS` says when each is used)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_ON_MICRO = 3
    NOT_FAITHFUL = 4


class UsageError(ValueError):
    """Bad arguments or data: exit code 2."""


_USAGE = (
    "bad arguments, or a file that is missing, empty, unreadable or not what its option "
    "expects, or data that does not match the model (said on stderr, before any model loads "
    "where the file alone tells)"
)
_BUG = "an unexpected error (a bug: the traceback is on stderr)"

# Per command, what each exit code means: the --help epilogs are written from this.
MEANINGS: dict[str, dict[ExitCode, str]] = {
    "inspect": {
        ExitCode.OK: "the model runs in TFLite Micro",
        ExitCode.FAILED: "the model does not run in TFLite Micro",
        ExitCode.USAGE: _USAGE,
        ExitCode.NOT_ON_MICRO: "not used by inspect",
        ExitCode.NOT_FAITHFUL: "not used by inspect",
    },
    "convert": {
        ExitCode.OK: "converted, runs in TFLite Micro and, with --validation, is a faithful copy",
        ExitCode.FAILED: "no strategy converted the model",
        ExitCode.USAGE: _USAGE,
        ExitCode.NOT_ON_MICRO: "converted, but TFLite Micro cannot run it (files written)",
        ExitCode.NOT_FAITHFUL: (
            "converted and runs, but with --validation TFLite Micro's outputs are not a "
            'faithful copy of the source\'s (files written; the reason under "not_deployable")'
        ),
    },
    "compare": {
        ExitCode.OK: "TFLite Micro's outputs are a faithful copy of the reference's",
        ExitCode.FAILED: _BUG,
        ExitCode.USAGE: _USAGE,
        ExitCode.NOT_ON_MICRO: "TFLite Micro cannot run the model",
        ExitCode.NOT_FAITHFUL: (
            "TFLite Micro runs it, but its outputs are not a faithful copy of the reference's: "
            "flat, or beyond --max-normalized-rmse / --max-error (the reason under "
            '"not_faithful")'
        ),
    },
}


def exit_codes_text(command: str | None = None, width: int = 79) -> str:
    """The "Exit codes:" section of a --help: one command's meanings, or every command's."""
    lines = ["Exit codes:"]
    for code in ExitCode:
        if command is not None:
            meaning = MEANINGS[command][code]
        else:
            meaning = "; ".join(_meaning_by_command(code))
        if code == ExitCode.FAILED and meaning != _BUG:
            meaning += f"; also {_BUG}"
        lines.append(
            textwrap.fill(
                meaning, width, initial_indent=f"  {int(code)}  ", subsequent_indent=" " * 5
            )
        )
    return "\n".join(lines)


def _meaning_by_command(code: ExitCode) -> list[str]:
    """Each command's meaning of `code`, commands sharing a meaning named together."""
    shared: dict[str, list[str]] = {}
    for command, meanings in MEANINGS.items():
        if not meanings[code].startswith("not used") and meanings[code] != _BUG:
            shared.setdefault(meanings[code], []).append(command)
    if len(shared) == 1 and len(next(iter(shared.values()))) == len(MEANINGS):
        return list(shared)
    return [f"{'/'.join(commands)}: {meaning}" for meaning, commands in shared.items()]
