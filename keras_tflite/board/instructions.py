"""Instructions per inference on a Cortex-M core, estimated from each op's work.

An op costs `per_op` plus a cost per unit of its work (`OpWork`: MACs, elements, recurrent
cells and steps, convolution taps), by op kind, core and kernel set. The costs were fitted on
single-op models measured on QEMU-emulated cores and are checked against whole models
(tests/board_measurements.py, docs/board.md). An estimate: a model unlike those can be
further off than they are.
"""

from __future__ import annotations

import dataclasses

from keras_tflite.board.work import OpWork

# Where the costs come from: TFLite Micro (tensorflow/tflite-micro 90b983c, 2026-08-20) with its
# reference kernels or CMSIS-NN, run on QEMU's Cortex-M3/M4 (mps2-an385/an386) and Cortex-M55
# (mps3-an547), instructions per Invoke counted by a QEMU plugin.
CALIBRATION = "TFLite Micro 90b983c + CMSIS-NN on QEMU Cortex-M3/M4/M55, instructions per Invoke"

# The ops the calibration models ran (tests/board_measurements.py): others are costed by kind,
# unmeasured.
MEASURED_OPS = frozenset(
    "FULLY_CONNECTED CONV_2D DEPTHWISE_CONV_2D UNIDIRECTIONAL_SEQUENCE_LSTM LOGISTIC TANH SOFTMAX "
    "MAX_POOL_2D AVERAGE_POOL_2D MEAN ADD SUB MUL RESHAPE CONCATENATION STRIDED_SLICE REVERSE_V2 "
    "GATHER SPLIT QUANTIZE DEQUANTIZE WHILE LESS LOGICAL_AND".split()
)
CORES = ("cortex-m4/reference", "cortex-m4/cmsis_nn", "cortex-m3/cmsis_nn", "cortex-m55/cmsis_nn")


@dataclasses.dataclass(frozen=True)
class Cost:
    """Instructions an op kind takes on one core and kernel set."""

    per_op: float = 0.0
    per_mac: float = 0.0
    per_padded_mac: float = 0.0
    per_element: float = 0.0
    per_cell: float = 0.0
    per_step: float = 0.0
    per_tap: float = 0.0

    def of(self, work: OpWork) -> float:
        return work.runs * (
            self.per_op
            + self.per_mac * work.macs
            + self.per_padded_mac * work.padded_macs
            + self.per_element * work.elements
            + self.per_cell * work.cells
            + self.per_step * work.steps
            + self.per_tap * work.taps
        )


# Op kinds that share costs.
KINDS = {
    "FULLY_CONNECTED": "matrix",
    "BATCH_MATMUL": "matrix",
    "CONV_2D": "conv",
    "TRANSPOSE_CONV": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "lstm",
    "LOGISTIC": "activation",
    "TANH": "activation",
    "HARD_SWISH": "activation",
    "EXP": "activation",
    "SOFTMAX": "softmax",
    "LOG_SOFTMAX": "softmax",
    "MAX_POOL_2D": "pool",
    "AVERAGE_POOL_2D": "pool",
    "MEAN": "mean",
    "SUM": "mean",
    "REDUCE_MAX": "mean",
    "ADD": "add",
    "SUB": "add",
    "MUL": "mul",
    "RESHAPE": "copy",
    "SQUEEZE": "copy",
    "EXPAND_DIMS": "copy",
    "CONCATENATION": "copy",
    "STRIDED_SLICE": "slice",
    "SLICE": "slice",
    "SPLIT": "slice",
    "SPLIT_V": "slice",
    "PACK": "slice",
    "UNPACK": "slice",
    "GATHER": "slice",
    "REVERSE_V2": "slice",
    "TRANSPOSE": "slice",
    "PAD": "slice",
    "PADV2": "slice",
}
ELEMENTWISE = "add"  # QUANTIZE, RELU, WHILE (per loop variable element and trip), any other

# Fitted per core by non-negative least squares on the relative error over the 40 single-op
# models and the 14 whole models of tests/board_measurements.py (whole models weigh 3x).
# Left out of the fit one at a time, a whole model's estimate stayed within 0.99-1.15x its
# count on the Cortex-M4 (reference), 0.92-1.24x (CMSIS-NN), 0.94-1.21x on the Cortex-M3 and
# 0.79-1.61x on the Cortex-M55 (a Conv1D model): benchmarks/board_estimates.py.
COSTS: dict[str, dict[str, Cost]] = {
    "cortex-m4/reference": {
        "matrix": Cost(per_op=740, per_mac=6.13, per_element=39.13),
        "conv": Cost(per_op=740, per_mac=68.9, per_tap=38.06, per_element=94.08),
        "conv_1xn": Cost(per_op=740, per_mac=69.02, per_tap=26.07, per_element=119.3),
        "depthwise": Cost(per_op=740, per_mac=82.17, per_element=123.1),
        "lstm": Cost(per_op=740, per_mac=9.985, per_cell=779, per_step=3707),
        "activation": Cost(per_op=740, per_element=368),
        "softmax": Cost(per_op=740, per_element=444.8),
        "pool": Cost(per_op=740, per_element=66.05),
        "mean": Cost(per_op=740, per_element=151.2),
        "add": Cost(per_op=740, per_element=98.64),
        "mul": Cost(per_op=740, per_element=50.49),
        "copy": Cost(per_op=740, per_element=0.2555),
        "slice": Cost(per_op=740, per_element=4.036),
    },
    "cortex-m4/cmsis_nn": {
        "matrix": Cost(per_op=665, per_mac=2.169, per_element=45.39),
        "conv": Cost(per_op=665, per_padded_mac=1.758, per_tap=8.477, per_element=20.42),
        "conv_1xn": Cost(per_op=665, per_padded_mac=1.643, per_element=52.44),
        "depthwise": Cost(per_op=665, per_padded_mac=9.624),
        "lstm": Cost(per_op=665, per_mac=1.91, per_cell=547.6, per_step=1694),
        "activation": Cost(per_op=665, per_element=379),
        "softmax": Cost(per_op=665, per_element=528.2),
        "pool": Cost(per_op=665, per_element=21.91),
        "mean": Cost(per_op=665, per_element=140.7),
        "add": Cost(per_op=665, per_element=88.89),
        "mul": Cost(per_op=665, per_element=59.59),
        "copy": Cost(per_op=665, per_element=10.35),
        "slice": Cost(per_op=665, per_element=20.39),
    },
    "cortex-m3/cmsis_nn": {
        "matrix": Cost(per_op=704, per_mac=3.707, per_element=31.69),
        "conv": Cost(per_op=704, per_padded_mac=2.815, per_tap=7.567, per_element=21.11),
        "conv_1xn": Cost(per_op=704, per_padded_mac=2.616, per_element=45.28),
        "depthwise": Cost(per_op=704, per_padded_mac=12.53),
        "lstm": Cost(per_op=704, per_mac=3.039, per_cell=511.5, per_step=2039),
        "activation": Cost(per_op=704, per_element=376.5),
        "softmax": Cost(per_op=704, per_element=522.7),
        "pool": Cost(per_op=704, per_element=24.02),
        "mean": Cost(per_op=704, per_element=139.1),
        "add": Cost(per_op=704, per_element=89.24),
        "mul": Cost(per_op=704, per_element=59.06),
        "copy": Cost(per_op=704, per_element=10.37),
        "slice": Cost(per_op=704, per_element=20.43),
    },
    "cortex-m55/cmsis_nn": {
        "matrix": Cost(per_op=597, per_mac=0.6886, per_element=14.58),
        "conv": Cost(per_op=597, per_padded_mac=0.2141, per_tap=3.582, per_element=10.86),
        "conv_1xn": Cost(per_op=597, per_padded_mac=0.2101, per_element=12.39),
        "depthwise": Cost(per_op=597, per_padded_mac=2.449, per_element=15.75),
        "lstm": Cost(per_op=597, per_mac=0.5552, per_cell=241.2, per_step=1989),
        "activation": Cost(per_op=597, per_element=348.5),
        "softmax": Cost(per_op=597, per_element=578.2),
        "pool": Cost(per_op=597, per_element=11.91),
        "mean": Cost(per_op=597, per_element=123.8),
        "add": Cost(per_op=597, per_element=16.04),
        "mul": Cost(per_op=597, per_element=31.96),
        "copy": Cost(per_op=597, per_element=9.969),
        "slice": Cost(per_op=597, per_element=19.67),
    },
}


def estimate(work: list[OpWork]) -> dict[str, int]:
    """Instructions per inference on each modelled core and kernel set (`CORES`)."""
    return {core: int(round(sum(_cost(core, w).of(w) for w in work))) for core in CORES}


def kind(work: OpWork) -> str:
    """The op's cost kind; a convolution over one row (a Conv1D) has its own: CMSIS-NN runs it
    as a 1xN convolution."""
    if work.op == "CONV_2D" and work.inputs[0][1:2] == (1,) and work.inputs[1][1:2] == (1,):
        return "conv_1xn"
    return KINDS.get(work.op, ELEMENTWISE)


def _cost(core: str, work: OpWork) -> Cost:
    return COSTS[core][kind(work)]
