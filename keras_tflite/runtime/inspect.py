"""Reading a .tflite flatbuffer: the ops of every subgraph, each input's and output's
quantization."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from keras_tflite.runtime.flatbuffer import display_name


@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
    """A model input or output as the runtime sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @property
    def is_quantized(self) -> bool:
        return self.scale != 0.0

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """float -> the tensor's dtype, with round-to-nearest and saturation."""
        dtype = np.dtype(self.dtype)
        if not self.is_quantized:
            return np.asarray(values).astype(dtype)
        info = np.iinfo(dtype)
        q = np.round(np.asarray(values, np.float64) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if not self.is_quantized:
            return np.asarray(values)
        return ((np.asarray(values, np.float32) - self.zero_point) * self.scale).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"shape": list(self.shape)}


def from_details(detail: dict[str, Any]) -> QuantizedTensor:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return QuantizedTensor(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale),
        zero_point=int(zero_point),
    )


def op_names(tflite: bytes) -> list[str]:
    """Builtin (or custom) op names of every subgraph, in execution order, main subgraph first."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(tflite, 0)
    ops = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            code = model.OperatorCodes(subgraph.Operators(o).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                ops.append(code.CustomCode().decode())
            else:
                ops.append(names.get(builtin, str(builtin)))
    return ops


def trailing_number(name: str) -> int:
    """Orders a converter's raw output names: 'Identity', 'Identity_1', or 'Call:0', 'Call:1'."""
    match = re.search(r"[:_](\d+)$", name)
    return int(match.group(1)) if match else 0


def io_details(tflite: bytes) -> tuple[list[QuantizedTensor], list[QuantizedTensor]]:
    """Inputs and outputs of the main subgraph, in its order: `input(i)` on a device.

    A model keras-tflite converted carries the Keras model's names and order; in another file,
    inputs take their signature's names and outputs keep the converter's names.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    signature = _signature_input_names(interpreter)
    inputs = [
        dataclasses.replace(
            from_details(d), name=signature.get(d["index"]) or display_name(d["name"])
        )
        for d in interpreter.get_input_details()
    ]
    outputs = [from_details(d) for d in interpreter.get_output_details()]
    return inputs, outputs


def _signature_input_names(interpreter: Any) -> dict[int, str]:
    """Input tensor index -> the signature's name for it: the name the model was traced with,
    even where the converter renamed the tensor (a QAT model's input is its FakeQuant op)."""
    signatures = list(interpreter.get_signature_list())
    if len(signatures) != 1:
        return {}
    details = interpreter.get_signature_runner(signatures[0]).get_input_details()
    return {d["index"]: name for name, d in details.items()}
