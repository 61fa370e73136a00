"""What each op of a .tflite model computes, read from its shapes: multiply-accumulates,
elements, recurrent steps; a WHILE loop's body counted once per trip."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# Ops whose work is multiply-accumulates, and how a recurrent op's weights are laid out.
MATRIX_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL")
RECURRENT_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM",)
# Ops that read every input element to make fewer outputs: their work is the input's size.
REDUCING_OPS = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "SUM", "REDUCE_MAX", "ARG_MAX")


@dataclasses.dataclass(frozen=True)
class OpWork:
    """One op's work for one inference.

    Attributes:
        op: The builtin op name.
        macs: Multiply-accumulates (matrix, convolution and recurrent ops); a convolution's at
            the kernel positions inside the input.
        padded_macs: A convolution's MACs counting the padding too (im2col computes them).
        elements: Output elements (for reducing ops, input elements) that the op writes or reads
            one by one: requantization, activation, copies.
        steps: Time steps a recurrent op runs (batch x time).
        cells: Recurrent cell updates (steps x units): the gate arithmetic of a recurrent op.
        taps: A convolution's output elements x kernel positions: the loop over the kernel
            window, whatever the input channels.
        runs: How many times the op runs per inference (a WHILE body's ops: its trips).
        inputs: The shapes of its inputs (() for an absent optional one).
        outputs: The shapes of its outputs.
        options: Its builtin options that size kernel buffers (strides, padding).
        activation: The type of its first input: "int8" in a full-int8 model.
        subgraph: The subgraph it belongs to (0: the main one).
        index: Its position in that subgraph.
    """

    op: str
    macs: int = 0
    padded_macs: int = 0
    elements: int = 0
    steps: int = 0
    cells: int = 0
    taps: int = 0
    runs: int = 1
    inputs: tuple[tuple[int, ...], ...] = ()
    outputs: tuple[tuple[int, ...], ...] = ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    activation: str = "int8"
    subgraph: int = 0
    index: int = 0


def model_work(tflite: bytes) -> list[OpWork]:
    """The work of every op one inference runs: the main subgraph's, and each WHILE loop's: its
    own (copying the loop variables), its body's for as many trips as its condition allows (the
    condition's constant bound; one trip when there is none), and its condition's once more."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return _subgraph_work(model, names, 0, runs=1, depth=0)


def _subgraph_work(model: Any, names: dict, index: int, runs: int, depth: int) -> list[OpWork]:
    graph = model.subgraphs[index]
    found: list[OpWork] = []
    for position, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        if name == "WHILE" and depth < 4:
            options = op.builtinOptions
            trips = _trips(model, names, options.condSubgraphIndex)
            found.append(OpWork(name, elements=_loop_elements(model, index, op), runs=runs * trips))
            cond, body = options.condSubgraphIndex, options.bodySubgraphIndex
            found += _subgraph_work(model, names, cond, runs * (trips + 1), depth + 1)
            found += _subgraph_work(model, names, body, runs * trips, depth + 1)
            continue
        shapes = [_shape(graph, i) for i in op.inputs]
        outputs = [_shape(graph, i) for i in op.outputs]
        work = _op_work(name, shapes, outputs, op)
        found.append(
            dataclasses.replace(
                work,
                runs=runs,
                inputs=tuple(shapes),
                outputs=tuple(outputs),
                options=_sizing_options(op.builtinOptions),
                activation=_type_name(graph, _data_input(name, op)),
                subgraph=index,
                index=position,
            )
        )
    return found


def _op_work(name: str, inputs: list, outputs: list, op: Any) -> OpWork:
    out = outputs[0] if outputs else ()
    out_size = int(np.prod(out)) if out else 1
    if name == "FULLY_CONNECTED" and len(inputs) > 1 and inputs[1]:
        return OpWork(name, macs=out_size * inputs[1][-1], elements=out_size)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(inputs) > 1 and len(out) == 4:
        return _conv_work(name, inputs, out, op.builtinOptions)
    if name == "TRANSPOSE_CONV" and len(inputs) > 1:
        window = inputs[1][1] * inputs[1][2]
        macs = int(np.prod(inputs[2])) * window * inputs[1][0]  # each input scatters a window
        taps = out_size * window
        return OpWork(name, macs=macs, padded_macs=macs, elements=out_size, taps=taps)
    if name == "BATCH_MATMUL" and len(inputs) > 1 and inputs[0]:
        return OpWork(name, macs=out_size * inputs[0][-1], elements=out_size)
    if name in RECURRENT_OPS:
        return _lstm_work(name, inputs, op)
    if name in REDUCING_OPS and inputs and inputs[0]:
        return OpWork(name, elements=int(np.prod(inputs[0])))
    return OpWork(name, elements=out_size)


def _conv_work(name: str, inputs: list, out: tuple, options: Any) -> OpWork:
    """A convolution's work: MACs at the kernel positions inside the input (what the reference
    kernel computes, skipping the padding), and counting the padding (what im2col computes)."""
    _, kernel_h, kernel_w, channels = inputs[1]
    depth = channels if name == "CONV_2D" else 1
    batch, out_h, out_w, out_c = out
    inside = _inside(inputs[0][1], out_h, kernel_h, options.strideH, options.padding) * _inside(
        inputs[0][2], out_w, kernel_w, options.strideW, options.padding
    )
    taps = batch * inside * out_c
    return OpWork(
        name,
        macs=taps * depth,
        padded_macs=batch * out_h * out_w * out_c * kernel_h * kernel_w * depth,
        elements=batch * out_h * out_w * out_c,
        taps=taps,
    )


def _inside(size: int, out: int, kernel: int, stride: int, padding: int) -> int:
    """Kernel positions inside the input along one axis, summed over the outputs (SAME pads
    as TensorFlow does: the smaller half before)."""
    before = max((out - 1) * stride + kernel - size, 0) // 2 if padding == 0 else 0
    return sum(
        sum(1 for k in range(kernel) if 0 <= o * stride - before + k < size) for o in range(out)
    )


def _lstm_work(name: str, inputs: list, op: Any) -> OpWork:
    """A fused LSTM: 4 gates of (input + units) MACs per unit and step."""
    sequence, input_weights, recurrent = inputs[0], inputs[2], inputs[6]
    time_major = bool(getattr(op.builtinOptions, "timeMajor", False))
    batch, time = (sequence[1], sequence[0]) if time_major else (sequence[0], sequence[1])
    units, features = input_weights[0], input_weights[1]
    steps = batch * time
    return OpWork(
        name,
        macs=steps * 4 * units * (features + recurrent[1]),
        elements=steps * units,
        steps=steps,
        cells=steps * units,
    )


def _sizing_options(options: Any) -> dict[str, Any]:
    """The builtin options that size a kernel's buffers: strides and padding (SAME = 0)."""
    found = {}
    for field in ("strideH", "strideW", "padding", "depthMultiplier", "timeMajor"):
        if hasattr(options, field):
            found[field] = int(getattr(options, field))
    return found


def _data_input(name: str, op: Any) -> int:
    """The tensor an op computes on: its first input (a TRANSPOSE_CONV's third)."""
    position = 2 if name == "TRANSPOSE_CONV" else 0
    return op.inputs[position] if len(op.inputs) > position else -1


_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    7: "int16",
    9: "int8",
}


def _type_name(graph: Any, index: int) -> str:
    return _TYPE_NAMES.get(graph.tensors[index].type, "other") if index >= 0 else "none"


def _shape(graph: Any, index: int) -> tuple[int, ...]:
    if index < 0:
        return ()
    shape = graph.tensors[index].shape
    return tuple(int(d) for d in shape) if shape is not None else ()


def _loop_elements(model: Any, index: int, op: Any) -> int:
    """What a WHILE copies into its body and back at each trip: its loop variables' elements."""
    graph = model.subgraphs[index]
    return sum(int(np.prod(_shape(graph, i) or (1,))) for i in op.inputs if i >= 0)


def _trips(model: Any, names: dict, cond_index: int) -> int:
    """A WHILE condition's bound: the largest integer constant its LESS ops compare with."""
    graph = model.subgraphs[cond_index]
    bounds = [1]
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        if name not in ("LESS", "LESS_EQUAL"):
            continue
        for i in op.inputs:
            data = model.buffers[graph.tensors[i].buffer].data if i >= 0 else None
            if data is not None and len(data) == 4:
                bounds.append(int(np.frombuffer(bytes(data), np.int32)[0]))
    return max(bounds)
