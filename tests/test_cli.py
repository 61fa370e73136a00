"""`keras-tflite inspect`: the installed console script on real models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import build, sample_inputs

import keras_tflite

pytestmark = pytest.mark.slow  # real conversions and training

SCRIPT = Path(sys.executable).parent / "keras-tflite"


@pytest.fixture(scope="module")
def lstm_file(tmp_path_factory):
    model = build("lstm")
    result = keras_tflite.convert(model, sample_inputs(model, 100))
    return result, result.save(tmp_path_factory.mktemp("cli") / "model.tflite")


@keras.saving.register_keras_serializable(package="keras_tflite_tests")
class UnitClip(keras.layers.Layer):
    """Clips to [-1, 1]: the converter makes it RELU_N1_TO_1, which TFLite Micro lacks."""

    def call(self, x):
        return keras.ops.clip(x, -1.0, 1.0)


def _run(*args):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_json_report_matches_the_conversion(lstm_file):
    result, path = lstm_file
    done = _run("inspect", path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bytes"] == result.size and report["ops"] == result.ops
    assert report["inputs"][0]["name"] == "series" and report["inputs"][0][
        "scale"
    ] == pytest.approx(result.inputs[0].scale)
    assert report["tflite_micro"]["runs"] and report["tflite_micro"]["arena_bytes"] > 1000


def test_text_report(lstm_file):
    _, path = lstm_file
    done = _run("inspect", path)
    assert done.returncode == 0
    assert "series: int8 (1, 24, 3), scale" in done.stdout
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in done.stdout and "TFLite Micro: runs" in done.stdout
    assert "arena on a 32-bit Cortex-M: reference" in done.stdout


def test_a_target_gives_the_time_and_an_unknown_one_is_refused(lstm_file):
    _, path = lstm_file
    done = _run("inspect", path, "--target", "nano33ble", "--json")
    assert done.returncode == 0, done.stderr
    device = json.loads(done.stdout)["device"]
    target = device["target"]
    instructions = device["instructions"]["cortex-m4/cmsis_nn"]
    assert target["latency_ms"] == pytest.approx(instructions * 1.3 / 64e6 * 1e3, rel=1e-3)
    assert device["tensor_arena_size"] == max(device["arena_bytes"].values())
    refused = _run("inspect", path, "--target", "pico")
    assert refused.returncode == 2
    assert "Expected target to be one of" in refused.stderr and "'pico'" in refused.stderr


def test_a_model_tflite_micro_cannot_run_exits_1_and_says_why(tmp_path):
    inputs = keras.Input((8,), name="x")
    clipped = keras.layers.Dense(4)(UnitClip()(inputs))  # on the input: nothing to fuse into
    model = keras.Model(inputs, clipped)
    result = keras_tflite.convert(model, sample_inputs(build("mlp"), 100)["features"])
    assert "RELU_N1_TO_1" in result.ops  # a kernel TFLite Micro does not have
    done = _run("inspect", result.save(tmp_path / "m.tflite"))
    assert done.returncode == 1
    assert "TFLite Micro: does not run" in done.stdout
    assert "RELU_N1_TO_1" in done.stdout.split("TFLite Micro: does not run")[1]  # says which op


def test_a_model_with_select_tf_ops_is_inspected_and_both_runtimes_say_why(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 3, 3], tf.float32, name="x")])
    def inverse(x):
        return tf.linalg.inv(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([inverse.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.SELECT_TF_OPS]
    (tmp_path / "flex.tflite").write_bytes(converter.convert())
    done = _run("inspect", tmp_path / "flex.tflite")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "ops: FlexMatrixInverse" in done.stdout
    assert (
        "LiteRT: does not run: the model uses TensorFlow ops outside TFLite's builtin set "
        "(FlexMatrixInverse)" in done.stdout
    )
    assert "TFLite Micro: does not run" in done.stdout
    assert "Flex delegate" not in done.stdout + done.stderr  # a phone's advice, not a board's
