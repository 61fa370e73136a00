"""TFLite Micro's C++ API as the generated firmware files may use it, and stand-in headers that
declare exactly that: the files compile here against them, and fail to if they call anything
TFLite Micro no longer has (as `MicroInterpreter::ResetVariableTensors`, removed in 2022,
tflite-micro #1479).

Provenance: tensorflow/tflite-micro at 90b983c2b3f1 (2026-08-20), read from its headers; each
entry names its header and line there. The pip `tflite-micro` wheel has no C++ headers, so the
real library cannot be built in CI (FIELD_NOTES: "The real TFLite Micro library on this
project's exports" built it offline, and the exports ran bit-identical to `MicroModel`).
"""

from __future__ import annotations

import re
from pathlib import Path

SNAPSHOT = "tensorflow/tflite-micro 90b983c2b3f1 (2026-08-20)"

# tensorflow/lite/micro/micro_interpreter.h, class tflite::MicroInterpreter.
INTERPRETER = {
    "MicroInterpreter": 56,  # (const Model*, const MicroOpResolver&, uint8_t* arena, size_t, ...)
    "AllocateTensors": 76,  # TfLiteStatus AllocateTensors();
    "Invoke": 81,  # TfLiteStatus Invoke();
    "input": 89,  # TfLiteTensor* input(size_t index);
    "output": 107,  # TfLiteTensor* output(size_t index);
    "Reset": 133,  # TfLiteStatus Reset();  (zeroes variable tensors: recurrent state)
}
# tensorflow/lite/schema/schema_generated.h: inline const tflite::Model* GetModel(const void*).
GET_MODEL_LINE = 25754
# tensorflow/lite/core/c/common.h:416-435, TfLitePtrUnion: the TfLiteTensor::data members.
TENSOR_DATA = ("i32", "i64", "f", "uint8", "i16", "int8")
# tensorflow/lite/micro/micro_mutable_op_resolver.h: template <unsigned int tOpCount> class
# tflite::MicroMutableOpResolver, every Add<Op>() by line (AddBuiltin and AddCustom aside).
RESOLVER_METHODS = {
    "AddAbs": 123,
    "AddAdd": 127,
    "AddAddN": 131,
    "AddArgMax": 136,
    "AddArgMin": 141,
    "AddAssignVariable": 146,
    "AddAveragePool2D": 152,
    "AddBatchMatMul": 157,
    "AddBatchToSpaceNd": 163,
    "AddBroadcastArgs": 169,
    "AddBroadcastTo": 175,
    "AddCallOnce": 181,
    "AddCast": 186,
    "AddCeil": 190,
    "AddCircularBuffer": 194,
    "AddConcatenation": 198,
    "AddConv2D": 204,
    "AddCos": 209,
    "AddCumSum": 213,
    "AddDecode": 218,
    "AddDelay": 223,
    "AddDepthToSpace": 228,
    "AddDepthwiseConv2D": 234,
    "AddDequantize": 240,
    "AddDetectionPostprocess": 246,
    "AddDiv": 251,
    "AddDynamicUpdateSlice": 256,
    "AddEmbeddingLookup": 261,
    "AddEnergy": 267,
    "AddElu": 272,
    "AddEqual": 277,
    "AddEthosU": 282,
    "AddExp": 290,
    "AddExpandDims": 294,
    "AddFftAutoScale": 300,
    "AddFill": 306,
    "AddFilterBank": 311,
    "AddFilterBankLog": 316,
    "AddFilterBankSquareRoot": 322,
    "AddFilterBankSpectralSubtraction": 328,
    "AddFloor": 336,
    "AddFloorDiv": 341,
    "AddFloorMod": 346,
    "AddFramer": 351,
    "AddFullyConnected": 356,
    "AddGather": 362,
    "AddGatherNd": 366,
    "AddGreater": 371,
    "AddGreaterEqual": 376,
    "AddHardSwish": 382,
    "AddIf": 387,
    "AddIrfft": 392,
    "AddL2Normalization": 398,
    "AddL2Pool2D": 404,
    "AddLeakyRelu": 409,
    "AddLess": 414,
    "AddLessEqual": 418,
    "AddLog": 423,
    "AddLogicalAnd": 427,
    "AddLogicalNot": 433,
    "AddLogicalOr": 439,
    "AddLogistic": 444,
    "AddLogSoftmax": 449,
    "AddMaximum": 455,
    "AddMaxPool2D": 460,
    "AddMirrorPad": 465,
    "AddMean": 470,
    "AddMinimum": 474,
    "AddMul": 479,
    "AddNeg": 483,
    "AddNotEqual": 487,
    "AddOverlapAdd": 492,
    "AddPack": 499,
    "AddPad": 503,
    "AddPadV2": 507,
    "AddPCAN": 512,
    "AddPrelu": 517,
    "AddQuantize": 522,
    "AddReadVariable": 527,
    "AddReduceAll": 533,
    "AddReduceMax": 538,
    "AddReduceMin": 543,
    "AddRelu": 548,
    "AddRelu6": 553,
    "AddReshape": 558,
    "AddResizeBilinear": 563,
    "AddResizeNearestNeighbor": 569,
    "AddReverseV2": 575,
    "AddRfft": 580,
    "AddRound": 586,
    "AddRsqrt": 591,
    "AddSelectV2": 595,
    "AddShape": 599,
    "AddSin": 604,
    "AddSlice": 608,
    "AddSoftmax": 613,
    "AddSpaceToBatchNd": 618,
    "AddSpaceToDepth": 624,
    "AddSplit": 630,
    "AddSplitV": 635,
    "AddSqueeze": 640,
    "AddSqrt": 645,
    "AddSquare": 649,
    "AddSquaredDifference": 654,
    "AddStridedSlice": 660,
    "AddStacker": 666,
    "AddSub": 671,
    "AddSum": 676,
    "AddSvdf": 680,
    "AddTanh": 684,
    "AddTransposeConv": 688,
    "AddTranspose": 694,
    "AddUnpack": 699,
    "AddUnidirectionalSequenceLSTM": 704,
    "AddVarHandle": 711,
    "AddWhile": 716,
    "AddWindow": 721,
    "AddZerosLike": 726,
}


def write_stand_ins(root: Path) -> None:
    """Headers under `root` declaring the API above and nothing else, plus the Arduino core's
    `Serial` and `delay` and the Arduino library's `TensorFlowLite.h`."""
    methods = "".join(
        f"  TfLiteStatus {name}() {{ ++added; return kTfLiteOk; }}  // line {line}\n"
        for name, line in RESOLVER_METHODS.items()
    )
    fields = " ".join(f"{_C[m]}* {m};" for m in TENSOR_DATA)
    headers = {
        "tensorflow/lite/core/c/common.h": (
            "#pragma once\n#include <cstddef>\n#include <cstdint>\n"
            "enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 };\n"
            f"typedef union TfLitePtrUnion {{ {fields} }} TfLitePtrUnion;\n"
            "typedef struct TfLiteTensor { TfLitePtrUnion data; } TfLiteTensor;\n"
        ),
        "tensorflow/lite/schema/schema_generated.h": (
            "#pragma once\nnamespace tflite {\nstruct Model {};\n"
            f"// line {GET_MODEL_LINE}\n"
            "inline const Model* GetModel(const void* buf) {\n"
            "  return static_cast<const Model*>(buf);\n}\n}  // namespace tflite\n"
        ),
        "tensorflow/lite/micro/micro_mutable_op_resolver.h": (
            '#pragma once\n#include "tensorflow/lite/core/c/common.h"\n'
            '#include "tensorflow/lite/schema/schema_generated.h"\n'
            "namespace tflite {\nclass MicroOpResolver {};\n"
            "template <unsigned int tOpCount>\nclass MicroMutableOpResolver : public MicroOpResolver {\n"
            " public:\n  unsigned int added = 0;\n" + methods + "};\n}  // namespace tflite\n"
        ),
        "tensorflow/lite/micro/micro_interpreter.h": (
            '#pragma once\n#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
            "namespace tflite {\nclass MicroInterpreter {\n public:\n"
            "  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver,\n"
            "                   uint8_t* tensor_arena, size_t tensor_arena_size) {}\n"
            "  TfLiteStatus AllocateTensors() { return kTfLiteOk; }\n"
            "  TfLiteStatus Invoke() { return kTfLiteOk; }\n"
            "  TfLiteTensor* input(size_t index) { return &tensor_; }\n"
            "  TfLiteTensor* output(size_t index) { return &tensor_; }\n"
            "  TfLiteStatus Reset() { return kTfLiteOk; }\n"
            " private:\n  int8_t data_[4096] = {};\n"
            "  TfLiteTensor tensor_ = {{.int8 = data_}};\n"
            "};\n}  // namespace tflite\n"
        ),
        "TensorFlowLite.h": "#pragma once\n#include <cstdint>\n",
        "Arduino.h": (
            "#pragma once\nstruct SerialPort {\n  void begin(long) {}\n"
            "  template <typename T> void print(T) {}\n"
            "  template <typename T> void print(T, int) {}\n"
            "  void println() {}\n  template <typename T> void println(T) {}\n};\n"
            "static SerialPort Serial;\ninline void delay(unsigned long) {}\n"
        ),
    }
    for name, text in headers.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


_C = {"i32": "int32_t", "i64": "int64_t", "f": "float", "uint8": "uint8_t", "i16": "int16_t",
      "int8": "int8_t"}  # fmt: skip


def calls(source: str) -> set[str]:
    """The TFLite Micro members a generated file calls: `interpreter->X(`, `resolver.X(`,
    `interpreter_->X(`, `.X(` on a MicroInterpreter, and `tflite::X`."""
    found = set(re.findall(r"(?:interpreter_?->|resolver\.|interpreter\.)(\w+)\(", source))
    return found | set(re.findall(r"tflite::(\w+)", source))


KNOWN = {*INTERPRETER, *RESOLVER_METHODS, "GetModel", "Model", "MicroMutableOpResolver"}
