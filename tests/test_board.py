"""What a board needs, through the callback: the arena per kernel set, the estimated time on a
named target, and the budgets a target sets."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import build, sample_inputs

import keras_tflite
from keras_tflite import TFLiteExportCallback

pytestmark = pytest.mark.slow  # real conversions and training


@pytest.fixture(scope="module")
def data():
    x = sample_inputs(build("lstm"), 200)["series"]
    y = (x[:, -1, :1] * 0.5).astype(np.float32)
    return (x[:150], y[:150]), (x[150:], y[150:])


def _fit(directory, data, **options):
    train, val = data
    model = build("lstm")
    model.compile(optimizer="adam", loss="mse")
    callback = TFLiteExportCallback(
        directory, train, val, blocking=True, all_logs=True, verbose=0, **options
    )
    history = model.fit(*train, epochs=1, callbacks=[callback], verbose=0)
    records = [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]
    return history.history, records[-1]


def test_a_target_reports_the_time_and_the_header_fits_either_kernel_set(tmp_path, data):
    logs, record = _fit(tmp_path, data, target="nano33ble")
    manifest = json.loads((tmp_path / "best" / "manifest.json").read_text())
    device = manifest["device"]
    arenas = device["arena_bytes"]
    # An LSTM: CMSIS-NN keeps eight int32 bias vectors per unit beyond the reference kernel.
    assert arenas["cmsis_nn"] >= arenas["reference"] + 8 * 4 * 8
    assert logs["tflite_arena_bytes"] == [max(arenas.values())]
    header = (tmp_path / "best" / "model_ops.h").read_text()
    assert f"constexpr int kTensorArenaSize = {max(arenas.values())};" in header
    assert f"reference {arenas['reference']}, cmsis_nn {arenas['cmsis_nn']}" in header
    target = device["target"]
    assert target["name"] == "nano33ble" and target["core"] == "cortex-m4"
    instructions = device["instructions"]["cortex-m4/cmsis_nn"]
    assert logs["tflite_instructions"] == [instructions]
    assert logs["tflite_latency_ms"][0] == pytest.approx(instructions * 1.3 / 64e6 * 1e3, 1e-3)
    assert record["exportable"]


def test_a_named_kernel_set_sizes_the_arena_and_the_budget_judges_it(tmp_path, data):
    logs, _ = _fit(tmp_path / "ref", data, kernels="reference")
    reference = logs["tflite_arena_bytes_reference"][0]
    assert logs["tflite_arena_bytes"] == [reference] < logs["tflite_arena_bytes_cmsis_nn"]
    header = (tmp_path / "ref" / "best" / "model_ops.h").read_text()
    assert f"kTensorArenaSize = {int(reference)};" in header
    # A RAM budget between the two: enough for the reference kernels, too little for CMSIS-NN.
    budget = int(reference) + 16
    _, fits = _fit(tmp_path / "fits", data, kernels="reference", max_arena_bytes=budget)
    _, too_big = _fit(tmp_path / "too_big", data, max_arena_bytes=budget)
    assert fits["exportable"]
    assert not too_big["exportable"]
    assert re.search(rf"arena_bytes \d+ > max_arena_bytes {budget}", too_big["reason"])


def test_max_latency_ms_refuses_a_model_too_slow_for_the_target(tmp_path, data):
    _, record = _fit(tmp_path, data, target="nano33ble", max_latency_ms=0.01)
    assert not record["exportable"]
    assert re.search(r"latency_ms [\d.]+ > max_latency_ms 0.01: too slow", record["reason"])
    assert not (tmp_path / "best").exists()


def test_an_int16_model_gets_no_time_and_max_latency_ms_says_why(tmp_path):
    x = sample_inputs(build("mlp"), 200)["features"]
    y = x[:, :1] * 0.5
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    callback = TFLiteExportCallback(
        tmp_path, x, (x, y), quantization="int16x8", target="nano33ble", max_latency_ms=100,
        blocking=True, verbose=0,
    )  # fmt: skip
    logs = model.fit(x, y, epochs=1, callbacks=[callback], verbose=0).history
    assert "tflite_latency_ms" not in logs and "tflite_arena_bytes" in logs
    record = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    assert record["reason"] == (
        "no time estimate to hold to max_latency_ms: int16 activations (the estimate covers int8)"
    )


def test_a_target_sets_the_budgets_not_given(tmp_path):
    callback = TFLiteExportCallback(tmp_path, target="nucleo_l4r5zi")
    assert callback.max_model_bytes == 2 * 1024 * 1024 and callback.max_arena_bytes == 640 * 1024
    own = keras_tflite.Target("m4_48", "my board", "cortex-m4", 48e6, 256 * 1024, 64 * 1024)
    callback = TFLiteExportCallback(tmp_path, target=own, max_arena_bytes=9000)
    assert callback.max_arena_bytes == 9000 and callback.max_model_bytes == 256 * 1024
    with pytest.raises(ValueError, match=r"clock_hz in hertz \(64 MHz is 64e6\).*clock_hz=64"):
        keras_tflite.Target("m4", "my board", "cortex-m4", 64, 256 * 1024, 64 * 1024)
    with pytest.raises(ValueError, match=r"Target ram_bytes to be a positive number.*: 0"):
        keras_tflite.Target("m4", "my board", "Cortex-M4", 64e6, 256 * 1024, 0)
    assert keras_tflite.Target("m4", "b", "Cortex-M4", 64e6, 1024, 1024).modelled


@pytest.mark.parametrize(
    "options, message",
    [
        ({"target": "pico"}, r"Expected target to be one of \[.*'nano33ble'.*\].*'pico'"),
        ({"kernels": "cmsis"}, r"Expected kernels to be one of \['reference', 'cmsis_nn'\]"),
        ({"max_latency_ms": 5}, r"Expected target= a board .* Received: target=None"),
        (
            {"max_latency_ms": 5, "target": "esp32s3"},
            r"Expected target= a board whose core the estimate models .* target='esp32s3'",
        ),
        ({"max_latency_ms": -1, "target": "nano33ble"}, r"max_latency_ms to be a positive"),
        (
            {"max_latency_ms": 5, "target": "alif_e7_he", "kernels": "reference"},
            r"Expected kernels='cmsis_nn' or None for max_latency_ms on a cortex-m55.*"
            r"Received: kernels='reference'",
        ),
    ],
)
def test_board_options_are_checked_before_training(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        TFLiteExportCallback(tmp_path, **options)
    assert not any(tmp_path.iterdir())
