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
    assert (
        "UNIDIRECTIONAL_SEQUENCE_LSTM" in done.stdout and "TFLite Micro: runs; arena" in done.stdout
    )


def test_a_model_tflite_micro_cannot_run_exits_1_and_says_why(tmp_path):
    inputs = keras.Input((8,), name="x")
    clipped = keras.layers.Dense(4)(UnitClip()(inputs))  # on the input: nothing to fuse into
    model = keras.Model(inputs, clipped)
    result = keras_tflite.convert(model, sample_inputs(build("mlp"), 100)["features"])
    assert "RELU_N1_TO_1" in result.ops  # a kernel TFLite Micro does not have
    done = _run("inspect", result.save(tmp_path / "m.tflite"))
    assert done.returncode == 1
    assert "TFLite Micro: does not run" in done.stdout


def test_missing_file_exits_2_with_a_clear_message(tmp_path):
    done = _run("inspect", tmp_path / "nope.tflite")
    assert done.returncode == 2 and "cannot read" in done.stderr and "nope.tflite" in done.stderr
