"""What the runtimes print from C++ (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate",
TensorFlow's start-up lines) kept off the user's terminal, and what they say that matters kept."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

# Lines the runtimes print that say nothing about the user's model.
_CHATTER = ("INFO: ", "I0000 ", "W0000 ", "WARNING: All log messages before absl::InitializeLog")


def quiet_tensorflow() -> None:
    """TensorFlow's C++ INFO and WARNING lines off, in this process and the worker it starts
    (unless the user chose a level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Runs the block with file descriptor 2, where C++ code prints, sent to a temporary file.

    Yields:
        A list that, once the block ends, holds the lines printed that are not runtime chatter
        (those are also written to stderr, where they belong).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            printed = sink.read().decode(errors="replace").splitlines()
            lines += [ln for ln in printed if ln.strip() and not ln.startswith(_CHATTER)]
            for line in lines:
                print(line, file=sys.stderr)
