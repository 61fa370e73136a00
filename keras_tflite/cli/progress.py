"""What the CLI shows while the worker runs: progress bars and short messages on stderr."""

from __future__ import annotations

import sys
from typing import Any


class ProgressBar:
    """Draws the worker's progress events on stderr: a bar redrawn in place on a terminal, a
    line per quarter otherwise (logs stay short)."""

    def __init__(self, stream: Any = None, width: int = 30):
        self.stream, self.width = stream or sys.stderr, width
        self.shown: dict[str, int] = {}

    def __call__(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if "progress" in event:
                self.draw(**event["progress"])

    def draw(self, stage: str, done: int, total: int) -> None:
        tty = self.stream.isatty()
        step = done * (self.width if tty else 4) // max(total, 1)
        if self.shown.get(stage, -1) >= step:
            return
        self.shown[stage] = step
        filled = done * self.width // max(total, 1)
        bar = f"  {stage:<12} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"
        ending = "\n" if (done >= total or not tty) else ""
        self.stream.write(("\r" if tty else "") + bar + ending)
        self.stream.flush()


def bar(args: Any) -> ProgressBar | None:
    return None if args.json else ProgressBar()


def say(message: str, args: Any) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)
