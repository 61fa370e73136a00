"""Running a .tflite model in LiteRT, the desktop and phone runtime, on float data."""

from __future__ import annotations

import os

import numpy as np

from keras_tflite.runtime.runner import QuantizedRunner


class TFLiteModel(QuantizedRunner):
    """A .tflite model in the LiteRT interpreter, run on float data.

    Inputs are quantized with each tensor's scale and zero point, outputs dequantized; integer
    inputs (token ids) pass through. Recurrent state kept by LiteRT in variable tensors is reset
    before every batch, so each sample is an independent sequence.

    Args:
        model: The flatbuffer bytes or a path to a `.tflite` file.
        num_threads: LiteRT interpreter threads. Defaults to 1.

    Example:
    ```python
    model = keras_tflite.TFLiteModel("model.tflite")
    y = model.predict(x_val)
    ```
    """

    def __init__(self, model: bytes | str | os.PathLike, *, num_threads: int = 1):
        super().__init__(model)
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=self.tflite, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        # `io_details` lists inputs and outputs in the flatbuffer's order, as LiteRT does.
        self._input_index = [d["index"] for d in self.interpreter.get_input_details()]
        self._output_index = [d["index"] for d in self.interpreter.get_output_details()]

    def reset_state(self) -> None:
        self.interpreter.reset_all_variables()

    def _invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if not self.keeps_state:
            self.interpreter.reset_all_variables()
        for index, value in zip(self._input_index, inputs):
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self._output_index]
