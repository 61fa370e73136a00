"""The generated firmware files against TFLite Micro's current API (`tflm_api`): they compile
against stand-ins that declare exactly that API, and call nothing outside it."""

from __future__ import annotations

import subprocess

import keras
import numpy as np
import pytest
from tflm_api import KNOWN, RESOLVER_METHODS, calls, write_stand_ins

import keras_tflite
from keras_tflite import MicroModel, StreamingModel
from keras_tflite.deploy import firmware
from keras_tflite.deploy.artifacts import c_array
from keras_tflite.runtime.flatbuffer import model_io

L = keras.layers
# Every op keras-tflite's conversions have produced (tests, benchmarks, examples).
SEEN_OPS = [
    "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "CUMSUM",
    "DEPTHWISE_CONV_2D", "DEQUANTIZE", "EXPAND_DIMS", "FULLY_CONNECTED", "GATHER", "HARD_SWISH",
    "LEAKY_RELU", "LESS", "LOGICAL_AND", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM",
    "MUL", "PACK", "PAD", "PADV2", "QUANTIZE", "RELU", "RELU6", "RESHAPE", "REVERSE_V2", "SOFTMAX",
    "SPACE_TO_BATCH_ND", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "TANH", "TRANSPOSE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNPACK", "WHILE",
]  # fmt: skip


@pytest.mark.parametrize("op", SEEN_OPS)
def test_every_resolver_method_exists_in_tflite_micro(op):
    assert firmware.resolver_method(op) in RESOLVER_METHODS


def _sets():
    """name -> files of a model set, as the callback writes them (window and streaming)."""
    keras.utils.set_random_seed(0)
    x = np.cumsum(np.random.default_rng(0).normal(0, 0.3, (200, 12, 3)), axis=1).astype("float32")
    found = {}
    for name, body, streaming in (
        ("lstm", lambda i: L.LSTM(8)(i), False),
        ("gru_loop", lambda i: L.GRU(8)(i), False),
        ("conv", lambda i: L.GlobalAveragePooling1D()(L.Conv1D(4, 3, activation="relu")(i)), False),
        ("stream_lstm", lambda i: L.LSTM(8)(i), True),
        ("stream_gru", lambda i: L.GRU(8)(i), True),
    ):
        inputs = keras.Input((12, 3), name="series")
        model = keras.Model(inputs, L.Dense(2, name="out")(body(inputs)))
        result = keras_tflite.convert(model, x, streaming=streaming)
        runner = StreamingModel(result.tflite) if streaming else MicroModel(result.tflite)
        runner.predict(x[:1])  # so that the arena is measured
        if streaming:
            state = model_io(result.tflite)["state"]
            header = firmware.model_header(
                result.ops, result.inputs, result.outputs, runner.arena_bytes, state
            )
            sketch = firmware.stream_sketch(result.inputs, state, "g_model")
        else:
            header = firmware.model_header(
                result.ops, result.inputs, result.outputs, runner.arena_bytes
            )
            sketch = firmware.arduino_sketch(result.inputs, result.outputs, "g_model")
        data_h, data_cc = c_array(result.tflite, "g_model")
        found[name] = {
            "model_ops.h": header,
            "model.ino": sketch,
            "model_data.h": data_h,
            "model_data.cc": data_cc,
        }
    return found


@pytest.fixture(scope="module")
def sets():
    return _sets()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "gru_loop", "conv", "stream_lstm", "stream_gru"])
def test_the_sketch_compiles_against_tflite_micros_api(sets, name, tmp_path):
    files = sets[name]
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    outside = calls(files["model.ino"] + files["model_ops.h"]) - KNOWN
    assert not outside, f"calls TFLite Micro has not (snapshot in tests/tflm_api.py): {outside}"
    write_stand_ins(tmp_path / "include")
    # An .ino is C++ with Arduino.h included first; the core calls setup() then loop().
    (tmp_path / "sketch.cc").write_text(
        "#include <Arduino.h>\n" + files["model.ino"] + "\nint main() { setup(); loop(); }\n"
    )
    compiled = subprocess.run(
        ["g++", "-std=c++11", "-Wall", f"-I{tmp_path / 'include'}", f"-I{tmp_path}", "-o",
         str(tmp_path / "sketch"), str(tmp_path / "sketch.cc"), str(tmp_path / "model_data.cc")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    assert subprocess.run([str(tmp_path / "sketch")], timeout=30).returncode == 0


def test_a_removed_call_is_caught():
    """The check that keeps the generated files honest fails on what TFLite Micro removed."""
    assert calls("interpreter->ResetVariableTensors();") - KNOWN == {"ResetVariableTensors"}
    assert calls("interpreter->Reset(); resolver.AddFullyConnected();") - KNOWN == set()
