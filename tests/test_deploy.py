"""Deployment files compile against TFLite Micro's API and compute what the runtimes compute."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import build, sample_inputs
from tflm_api import write_stand_ins

from keras_tflite import TFLiteExportCallback
from keras_tflite.deploy.firmware import c_identifier, resolver_method
from keras_tflite.runtime.inspect import QuantizedTensor

pytestmark = pytest.mark.slow  # real conversions and training


@pytest.fixture(scope="module")
def best(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    model = build("lstm")
    model.compile(optimizer="adam", loss="mse")
    x = sample_inputs(model, 150)["series"]
    y = x[:, -1, :1]
    callback = TFLiteExportCallback(
        root, (x, y), (x, y), blocking=True, c_symbol="g_model", verbose=0
    )
    model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
    return root / "best"


@pytest.mark.parametrize(
    "op, method",
    [
        ("CONV_2D", "AddConv2D"),
        ("MAX_POOL_2D", "AddMaxPool2D"),
        ("REVERSE_V2", "AddReverseV2"),
        ("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM"),
        ("PADV2", "AddPadV2"),
        ("SPACE_TO_BATCH_ND", "AddSpaceToBatchNd"),
        ("BATCH_MATMUL", "AddBatchMatMul"),
    ],
)
def test_resolver_methods_are_tflite_micros_names(op, method):
    assert resolver_method(op) == method


def test_resolver_arena_and_helpers_compile_and_match_python(best, tmp_path):
    manifest = json.loads((best / "manifest.json").read_text())
    write_stand_ins(tmp_path)  # TFLite Micro's current API, nothing more (tests/tflm_api.py)
    values = [-3.0, -0.5, 0.0, 0.7, 2.5, 100.0]
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "model_ops.h"\n#include "model_data.h"\n'
        "int main() {\n  tflite::MicroMutableOpResolver<kModelOpCount> resolver;\n"
        "  int status = RegisterModelOps(resolver);\n"
        '  std::printf("%d %u %d %u\\n", status, resolver.added, kTensorArenaSize, g_model_len);\n'
        + "".join(f'  std::printf("%d\\n", (int)QuantizeSeries({v}f));\n' for v in values)
        + f'  std::printf("%.6f\\n", Dequantize{c_identifier(manifest["outputs"][0]["name"])}(-7));\n}}\n'
    )
    binary = tmp_path / "check"
    subprocess.run(
        [
            "g++",
            "-std=c++11",
            f"-I{tmp_path}",
            f"-I{best}",
            "-o",
            str(binary),
            str(tmp_path / "main.cc"),
            str(best / "model_data.cc"),
        ],
        check=True,
    )
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split(
        "\n"
    )
    status, added, arena, length = map(int, lines[0].split())
    assert status == 0 and added == len(set(manifest["ops"]))
    assert arena >= manifest["metrics"]["tflite_arena_bytes"] and arena % 16 == 0
    assert length == manifest["model_bytes"]
    series = QuantizedTensor(
        **{**manifest["inputs"][0], "shape": tuple(manifest["inputs"][0]["shape"])}
    )
    assert [int(v) for v in lines[1:7]] == [int(series.quantize(np.float32(v))) for v in values]
    output = QuantizedTensor(
        **{**manifest["outputs"][0], "shape": tuple(manifest["outputs"][0]["shape"])}
    )
    assert float(lines[7]) == pytest.approx(float(output.dequantize(np.int8(-7))), abs=1e-5)


def test_arduino_sketch_ties_the_files_together(best):
    sketch = (best / "model.ino").read_text()
    output = json.loads((best / "manifest.json").read_text())["outputs"][0]["name"]
    for needed in (
        '#include "model_data.h"',
        '#include "model_ops.h"',
        "RegisterModelOps(resolver)",
        "tensor_arena[kTensorArenaSize]",
        "tflite::GetModel(g_model)",
        "interpreter->input(kSeriesInputIndex)",
        "QuantizeSeries(value)",
        # TFLite Micro removed ResetVariableTensors() in 2022 (tflite-micro #1479).
        "interpreter->Reset();",
        f"Dequantize{c_identifier(output)}(",
    ):
        assert needed in sketch, needed
    assert "ResetVariableTensors" not in sketch
