"""Running a .tflite model in LiteRT, the desktop and phone runtime, on float data."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from keras_tflite.runtime.native import without_chatter
from keras_tflite.runtime.runner import QuantizedRunner


class TFLiteModel(QuantizedRunner):
    """A .tflite model in the LiteRT interpreter, run on float data.

    Inputs are quantized with each tensor's scale and zero point, outputs dequantized; integer
    inputs (token ids) pass through. Recurrent state kept by LiteRT in variable tensors is reset
    before every batch, so each sample is an independent sequence.

    LiteRT hands the model to its default delegate (XNNPACK) when it can. XNNPACK refuses some
    valid int8 models ("failed to create XNNPACK runtime", for example a layer whose output
    was always zero in calibration); such a model then runs on LiteRT's builtin kernels, with a
    warning, and `delegate_refusal` says why.

    Args:
        model: The flatbuffer bytes or a path to a `.tflite` file.
        num_threads: LiteRT interpreter threads. Defaults to 1.
        default_delegates: Let LiteRT apply its default delegate (XNNPACK). Defaults to True.

    Example:
    ```python
    model = keras_tflite.TFLiteModel("model.tflite")
    y = model.predict(x_val)
    ```
    """

    def __init__(
        self,
        model: bytes | str | os.PathLike,
        *,
        num_threads: int = 1,
        default_delegates: bool = True,
    ):
        super().__init__(model)
        self.num_threads = num_threads
        self.delegate_refusal: str | None = None  # why the default delegate was dropped
        try:
            self._start(default_delegates)
        except RuntimeError as error:
            if not default_delegates or not _refused_by_xnnpack(error):
                raise RuntimeError(_one_line(error)) from error
            self._without_default_delegates(error, stacklevel=2)

    def _start(self, default_delegates: bool) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (
            OpResolverType.AUTO
            if default_delegates
            else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self.default_delegates = default_delegates

        def create() -> None:
            self.interpreter = Interpreter(
                model_content=self.tflite,
                num_threads=self.num_threads,
                experimental_op_resolver_type=resolver,
            )
            self.interpreter.allocate_tensors()

        with without_chatter():  # LiteRT greets its default delegate on stderr
            create()
        # `io_details` lists inputs and outputs in the flatbuffer's order, as LiteRT does.
        self._input_index = [d["index"] for d in self.interpreter.get_input_details()]
        self._output_index = [d["index"] for d in self.interpreter.get_output_details()]

    def _without_default_delegates(self, error: RuntimeError, stacklevel: int) -> None:
        """Starts again on the builtin kernels after the default delegate failed with `error`
        (raised again, with the builtin kernels' error, when they fail too)."""
        try:
            self._start(default_delegates=False)
        except RuntimeError as builtin:
            raise RuntimeError(f"{_one_line(error)}; without it: {_one_line(builtin)}") from error
        self.delegate_refusal = _one_line(error)
        warnings.warn(
            f"LiteRT's default delegate (XNNPACK) refused this model ({self.delegate_refusal}); "
            "running it on LiteRT's builtin kernels.",
            stacklevel=stacklevel + 1,
        )

    def reset_state(self) -> None:
        self.interpreter.reset_all_variables()

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        try:
            return self._run(inputs)
        except RuntimeError as error:  # XNNPACK builds its runtime at the first invoke
            if not self.default_delegates or not _refused_by_xnnpack(error):
                raise RuntimeError(_one_line(error)) from error
            self._without_default_delegates(error, stacklevel=3)  # predict's caller
        return self._run(inputs)

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if not self.keeps_state:
            self.interpreter.reset_all_variables()
        for index, value in zip(self._input_index, inputs):
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self._output_index]


def _refused_by_xnnpack(error: Exception) -> bool:
    """Whether LiteRT failed in its default delegate (which its builtin kernels may not)."""
    return "XNNPACK" in str(error)


def _one_line(error: Exception) -> str:
    """LiteRT's message on one line ("...runtimeNode number 9..." glues two messages), without
    advice that holds only on a phone (linking the Flex delegate for Select TF ops)."""
    text = " ".join(str(error).split())
    if "Select TensorFlow op" in text:
        ops = ", ".join(re.findall(r"\((Flex\w+)\)", text)) or "Select TF ops"
        return (
            f"the model uses TensorFlow ops outside TFLite's builtin set ({ops}), which neither "
            "TFLite Micro nor LiteRT's builtin kernels have"
        )
    return text.replace("runtimeNode number", "runtime; node number").rstrip(".")
