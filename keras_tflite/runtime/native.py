"""What the runtimes' C++ code prints on file descriptor 2: read, or passed on without chatter."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

# Lines the runtimes print that say nothing about the user's model: LiteRT's greeting for its
# default delegate, TensorFlow's and absl's start-up lines.
CHATTER = (
    "INFO: ",
    "I0000 ",
    "W0000 ",
    "WARNING: All log messages before absl::InitializeLog",
    "Created TensorFlow Lite XNNPACK delegate",
)


_SWAPPING = threading.RLock()  # nested: TFLite Micro reports its arena inside a capture


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Sends file descriptor 2 to a temporary file for the block.

    Yields:
        A list that, once the block ends, holds the lines printed there.
    """
    sys.stderr.flush()
    lines: list[str] = []
    with _SWAPPING, tempfile.TemporaryFile() as sink:  # one swap of the process's fd 2 at a time
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode(errors="replace").splitlines()


@contextlib.contextmanager
def without_chatter() -> Iterator[list[str]]:
    """Runs the block with the runtimes' chatter dropped.

    Yields:
        A list that, once the block ends, holds what else they printed. When the block succeeds
        it is passed on to stderr, where it belongs; when it raises, it is the caller's to add
        to its error (TFLite Micro says there why it cannot run a model).
    """
    said: list[str] = []
    printed: list[str] = []
    succeeded = False
    try:
        with captured_stderr() as printed:
            yield said
        succeeded = True
    finally:
        said += [line for line in printed if line.strip() and not any(c in line for c in CHATTER)]
        for line in said if succeeded else []:
            print(line, file=sys.stderr, flush=True)
