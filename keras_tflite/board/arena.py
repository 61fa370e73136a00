"""The tensor arena a 32-bit Cortex-M needs, per kernel set, from the arena TFLite Micro's
Python interpreter measured on this host (64-bit, reference kernels).

The arena has a head (tensors and kernel scratch buffers, planned to share memory) and a tail
(what persists: TFLite Micro's structs per tensor and node, each kernel's op data). On a 32-bit
core the head is the same and the structs of the tail shrink with the pointers; CMSIS-NN's
kernels ask for more of both than the reference kernels. Each rule below cites the source it
follows (tensorflow/tflite-micro 90b983c; ARM-software/CMSIS-NN, 2026-07-15).
"""

from __future__ import annotations

from typing import Any

from keras_tflite.board.work import OpWork

KERNEL_SETS = ("reference", "cmsis_nn")
ALIGNMENT = 16  # MicroArenaBufferAlignment(): every arena allocation starts on 16 bytes

# Cortex-M bytes of what TFLite Micro allocates one per tensor or node, where this host's are
# 24, 64, 64 and 16 (sizeof, arm-none-eabi-g++ -mcpu=cortex-m4 against g++ -m64, with
# TF_LITE_STATIC_MEMORY; the quantization parameters as measured). Variable tensors' buffers
# (an LSTM's state) are data, the same everywhere.
PER_ALLOCATION_BYTES = {
    "TfLiteEvalTensor data": 12,
    "Persistent TfLiteTensor data": 32,
    "NodeAndRegistration struct": 32,
    "Persistent TfLiteTensor quantization data": 10,
}
KEPT_AS_MEASURED = ("TfLiteTensor variable buffer data",)
# The rest of the tail is the kernels' op data ("Persistent buffer data", integers with a few
# pointers) and what the allocator keeps unlabelled (builtin option structs, pointer arrays,
# the subgraph's bookkeeping). Fitted by least squares on 14 models measured on a Cortex-M4
# (tests/board_measurements.py): 32-bit bytes = OP_DATA_SHARE x op data - OP_DATA_SAVED per
# allocation + UNLABELLED_SHARE x the rest + TAIL_OFFSET; residuals -45..+77 bytes.
OP_DATA_SHARE = 0.96
OP_DATA_SAVED = 8.5
UNLABELLED_SHARE = 0.935
TAIL_OFFSET = -316
# What may differ between the TFLite Micro the board builds and the one measured here, and the
# fit's largest shortfall (45 bytes).
MARGIN_BYTES = 80

# CMSIS-NN (TFLite Micro's kernels/cmsis_nn): an LSTM keeps 8 effective-bias vectors of int32
# per unit (unidirectional_sequence_lstm.cc, CMSIS_NN_PortOpData) and a larger op data.
LSTM_OP_DATA_EXTRA = 256
# conv.cc, depthwise_conv.cc and fully_connected.cc keep a scratch buffer index (and, for a fully
# connected op, a kernel-sum pointer) beside the reference op data: up to 32 bytes measured.
OP_DATA_EXTRA = {"CONV_2D": 32, "DEPTHWISE_CONV_2D": 32, "FULLY_CONNECTED": 32}
CH_IN_BLOCK_MVE = 124  # CMSIS-NN's arm_nnsupportfunctions.h


# CMSIS-NN's build for each core: DSP instructions on a Cortex-M4 (and plain C on a Cortex-M3,
# whose buffers are no larger), Helium on a Cortex-M55.
CMSIS_VARIANTS = {"cortex-m3": "dsp", "cortex-m4": "dsp", "cortex-m55": "mve"}


def arena_per_kernel_set(
    allocations: dict[str, int], work: list[OpWork], live: list[int]
) -> dict[str, Any]:
    """Arena bytes on a 32-bit Cortex-M: `{"reference": n, "cmsis_nn": m, "cmsis_nn_by_core":
    {core: bytes}}`, where `cmsis_nn` fits CMSIS-NN on any of those cores.

    Args:
        allocations: `MicroModel.allocations()` of the model on this host.
        work: `model_work(tflite)`, the ops in execution order (main subgraph first).
        live: `live_bytes(tflite)`: the main subgraph's tensor bytes alive at each of its ops.
    """
    tail = _tail_on_32_bits(allocations)
    reference = allocations["head"] + tail
    cmsis = {
        variant: _round_up(
            allocations["head"]
            + _extra_head(work, live, allocations["head"], variant)
            + tail
            + _extra_tail(work, variant)
            + MARGIN_BYTES
        )
        for variant in set(CMSIS_VARIANTS.values())
    }
    return {
        "reference": _round_up(reference + MARGIN_BYTES),
        "cmsis_nn": max(cmsis.values()),
        "cmsis_nn_by_core": {core: cmsis[v] for core, v in CMSIS_VARIANTS.items()},
    }


def _tail_on_32_bits(allocations: dict[str, int]) -> int:
    """The tail's bytes on a 32-bit Cortex-M, from its parts measured on this host."""
    parts = [name for name in allocations if f"{name} count" in allocations]
    tail = sum(
        allocations[f"{n} count"] * size
        for n, size in PER_ALLOCATION_BYTES.items()
        if f"{n} count" in allocations
    )
    tail += sum(allocations.get(name, 0) for name in KEPT_AS_MEASURED)
    op_data = allocations.get("Persistent buffer data", 0)
    op_data_count = allocations.get("Persistent buffer data count", 0)
    unlabelled = allocations["tail"] - sum(allocations[name] for name in parts)
    rest = OP_DATA_SHARE * op_data - OP_DATA_SAVED * op_data_count
    return tail + int(rest + UNLABELLED_SHARE * unlabelled + TAIL_OFFSET)


def _extra_tail(work: list[OpWork], variant: str) -> int:
    """What CMSIS-NN's kernels keep beyond the reference kernels' op data."""
    extra = 0
    for op in work:
        if op.op == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            units = op.inputs[2][0]
            extra += 8 * _round_up(4 * units) + LSTM_OP_DATA_EXTRA
        extra += OP_DATA_EXTRA.get(op.op, 0)
        if op.op == "FULLY_CONNECTED" and variant == "mve":  # kernel sums, int32 per output
            extra += _round_up(4 * op.inputs[1][0])
    return extra


def _extra_head(work: list[OpWork], live: list[int], head: int, variant: str) -> int:
    """How far CMSIS-NN's scratch buffers can push the head's peak: an op's scratch buffer
    lives while it runs, beside the tensors alive then."""
    peak = head
    for op in work:
        scratch = cmsis_scratch_bytes(op, variant)
        if scratch:  # a WHILE body's op: beside everything alive at its WHILE (the largest)
            alive = live[op.index] if op.subgraph == 0 else max(live)
            if op.op == "TRANSPOSE_CONV":  # not measured: on top of the reference's peak
                alive = head
            peak = max(peak, alive + _round_up(scratch))
    return peak - head


def cmsis_scratch_bytes(op: OpWork, variant: str) -> int:
    """The scratch buffer a CMSIS-NN kernel requests (`*_get_buffer_size` of CMSIS-NN's DSP
    build for Cortex-M4, or its Helium build for Cortex-M55)."""
    if op.op == "CONV_2D":
        _, kernel_h, kernel_w, channels = op.inputs[1]
        pointwise = kernel_h == kernel_w == 1 and op.options.get("strideH", 1) == 1
        if pointwise and op.options.get("strideW", 1) == 1 and op.options.get("padding") == 1:
            return 0  # arm_convolve_1x1_s8_fast: no buffer (gcc builds)
        columns = kernel_h * kernel_w * channels
        if variant == "mve":
            return 4 * -(-columns // 16) * 16  # arm_convolve_s8_get_buffer_size_mve
        return 2 * (-(-columns // 4) * 4) * 2  # two int16 im2col columns, 4-aligned
    if op.op == "DEPTHWISE_CONV_2D":
        _, kernel_h, kernel_w, channels = op.inputs[1]
        if op.options.get("depthMultiplier", 1) != 1 or op.inputs[0][-1] != channels:
            return 0
        if variant == "mve":
            return 4 * CH_IN_BLOCK_MVE * kernel_h * kernel_w
        if kernel_h == kernel_w == 3:
            return 0  # arm_depthwise_conv_3x3_s8 (padding 0 or 1)
        return channels * kernel_h * kernel_w * 2
    if op.op == "TRANSPOSE_CONV":  # transpose_conv.cc: a column buffer and a reversed filter
        _, kernel_h, kernel_w, channels = op.inputs[1]
        stride_h, stride_w = op.options.get("strideH", 1), op.options.get("strideW", 1)
        columns = ((op.inputs[2][2] - 1) * stride_w + max(kernel_w, stride_h)) * op.inputs[1][0]
        im2col = 4 * -(-(kernel_h * kernel_w * channels) // 16) * 16
        return (
            4 * columns * max(kernel_h, stride_h)
            + op.inputs[1][0] * kernel_h * kernel_w * channels
            + im2col
        )
    if op.op == "AVERAGE_POOL_2D" and variant == "dsp":
        return 4 * op.outputs[0][-1]  # arm_avgpool_s8_get_buffer_size_dsp
    return 0


def live_bytes(tflite: bytes) -> list[int]:
    """Bytes of the main subgraph's non-constant tensors alive while each op runs (a tensor
    lives from the op that makes it, or the start for an input, to its last reader)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    graph = model.subgraphs[0]
    count = len(graph.operators)
    first: dict[int, int] = {i: 0 for i in graph.inputs}
    last: dict[int, int] = {i: count - 1 for i in graph.outputs}
    for index, op in enumerate(graph.operators):
        for tensor in op.inputs:
            if tensor >= 0 and _planned(model, graph, tensor):
                first.setdefault(tensor, index)
                last[tensor] = max(last.get(tensor, index), index)
        for tensor in op.outputs:
            first.setdefault(tensor, index)
            last.setdefault(tensor, index)
    alive = [0] * count
    for tensor, start in first.items():
        size = _round_up(_tensor_bytes(graph.tensors[tensor]))
        for index in range(start, last.get(tensor, start) + 1):
            alive[index] += size
    return alive


def _planned(model: Any, graph: Any, tensor: int) -> bool:
    """Whether the planner places the tensor in the head: not a constant, not a variable."""
    described = graph.tensors[tensor]
    data = model.buffers[described.buffer].data if described.buffer else None
    return data is None and not described.isVariable


_DTYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}  # TensorType -> bytes


def _tensor_bytes(tensor: Any) -> int:
    size = _DTYPE_BYTES.get(tensor.type, 4)
    for dim in tensor.shape if tensor.shape is not None else ():
        size *= max(int(dim), 1)
    return size


def _round_up(value: int) -> int:
    return -(-int(value) // ALIGNMENT) * ALIGNMENT
