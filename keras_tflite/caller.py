"""Warnings that point at the user's line, not at keras-tflite's (or Keras', or a thread's)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
import warnings
from types import FrameType

# Frames of these never carry the user's line: the library, the frameworks calling a callback,
# and the machinery of the threads exports run on.
_FRAMEWORKS = ("keras_tflite", "keras", "tf_keras", "tensorflow", "absl")
_MACHINERY = (threading.__file__, contextlib.__file__)

_site: tuple[str, int, dict] | None = None  # the user's line met last, for other threads


def remember() -> None:
    """Remembers the user's line calling into keras-tflite now (`fit`, a session hook), for
    warnings that later arise on a background thread."""
    global _site
    frame = _user_frame()
    if frame is not None:
        _site = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn`, attributed to the user's line: the nearest caller outside keras-tflite and
    the frameworks, else (on an export thread) the line `remember` saw. Shown once per line and
    message, as Python's default filter does."""
    frame = _user_frame()
    if frame is not None:
        site = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
    elif _site is not None:
        site = _site
    else:
        warnings.warn(message, category, stacklevel=2)
        return
    filename, lineno, module_globals = site
    # Without `module_globals`: its loader may not serve the source (`python -c`, a notebook)
    # and would raise here; the line is then read by file name, when there is a file.
    warnings.warn_explicit(
        message,
        category,
        filename,
        lineno,
        module=module_globals.get("__name__", "__main__"),
        registry=module_globals.setdefault("__warningregistry__", {}),
    )


def _user_frame() -> FrameType | None:
    internal = _internal_folders()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(internal) and filename not in _MACHINERY:
            return frame
        frame = frame.f_back
    return None


def _internal_folders() -> tuple[str, ...]:
    folders = []
    for name in _FRAMEWORKS:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            folders.append(os.path.dirname(path) + os.sep)
    folders.append(os.path.dirname(concurrent.futures.__file__) + os.sep)
    return tuple(folders)
