"""Running a .tflite model in TFLite Micro (its reference kernels), and measuring its arena."""

from __future__ import annotations

import re

import numpy as np

from keras_tflite.runtime.native import captured_stderr
from keras_tflite.runtime.runner import QuantizedRunner

_ARENA_PART = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_ARENA_CATEGORY = re.compile(r"'([^']+)' used (\d+) bytes .*?for (\d+) ")


class MicroModel(QuantizedRunner):
    """A .tflite model in the TFLite Micro interpreter, run on float data like `TFLiteModel`.

    TFLite Micro runs the reference kernels a microcontroller runs; its results can differ from
    LiteRT's on the same int8 model. The interpreter is reset before every batch.

    Args:
        model: The flatbuffer bytes or a path to a `.tflite` file.
        arena_size: Tensor arena bytes to offer. Defaults to max(16 x model size, 1 MiB).

    Raises:
        RuntimeError: when TFLite Micro cannot load or allocate the model (an unsupported op).
    """

    def __init__(self, model, *, arena_size: int | None = None):
        super().__init__(model)
        from tflite_micro.python.tflite_micro import runtime

        self.arena_size = arena_size or max(16 * len(self.tflite), 1 << 20)
        self.interpreter = runtime.Interpreter.from_bytes(self.tflite, arena_size=self.arena_size)

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        # TFLite Micro's input(i) and output(i) are the flatbuffer's, as `io_details` lists them.
        if not self.keeps_state:
            self.interpreter.reset()
        self._last_inputs = inputs
        for position, value in enumerate(inputs):
            self.interpreter.set_input(value, position)
        self.interpreter.invoke()
        return [self.interpreter.get_output(p) for p in range(len(self.outputs))]

    def reset_state(self) -> None:
        self.interpreter.reset()

    def invoke_seconds(self, repeats: int = 20) -> float | None:
        """TFLite Micro's time for one invoke on this machine, with the inputs of the last
        `predict` (set again each time: the arena may reuse an input's memory), the fastest of
        three rounds of `repeats` (fewer for a slow model: about 50 ms a round). None before any
        `predict`, or when an invoke fails."""
        import time

        inputs = getattr(self, "_last_inputs", None)
        if inputs is None:
            return None

        def once() -> None:
            for position, value in enumerate(inputs):
                self.interpreter.set_input(value, position)
            self.interpreter.invoke()

        try:
            began = time.perf_counter()
            once()
            first = time.perf_counter() - began
            repeats = max(1, min(repeats, int(0.05 / max(first, 1e-9))))
            rounds = []
            for _ in range(3):
                began = time.perf_counter()
                for _ in range(repeats):
                    once()
                rounds.append((time.perf_counter() - began) / repeats)
        except RuntimeError:
            return None
        finally:
            if not self.keeps_state:
                self.interpreter.reset()
        return min(rounds)

    @property
    def arena_bytes(self) -> int:
        """Arena bytes the model used, as TFLite Micro's recording allocator reports them.

        Measured on this host (64-bit pointers): `keras_tflite.board` turns it into a 32-bit
        microcontroller's arena per kernel set. Call after at least one `predict`, so that
        every kernel has allocated its scratch memory.
        """
        return self.allocations()["total"]

    def allocations(self) -> dict[str, int]:
        """The recording allocator's report: `total`, `head` (tensors and scratch buffers
        planned to share memory), `tail` (what persists), and each kind of persistent
        allocation by its name, with `<name> count`."""
        with captured_stderr() as printed:
            self.interpreter.print_allocations()
        report = "\n".join(printed)
        found = {part: int(size) for part, size in _ARENA_PART.findall(report)}
        if "total" not in found:
            raise RuntimeError(f"TFLite Micro did not report its arena use: {report[-300:]!r}")
        for name, size, count in _ARENA_CATEGORY.findall(report):
            found[name], found[f"{name} count"] = int(size), int(count)
        return found
