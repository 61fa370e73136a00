"""TensorBoard: the int8 curves beside Keras' own, read back with TensorBoard's loader and server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build, sample_inputs
from tensorboard.backend.event_processing import plugin_event_accumulator

from keras_tflite import TFLiteExportCallback

pytestmark = pytest.mark.slow  # real conversions and training


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One fit with Keras' TensorBoard and the export callback: (log_dir, export_dir, history)."""
    root = tmp_path_factory.mktemp("tb")
    x = sample_inputs(build("lstm"), 200)["series"]
    y = (x[:, -1, :1] * 0.5).astype(np.float32)
    model = build("lstm")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    export = TFLiteExportCallback(
        root / "exports",
        (x[:150], y[:150]),
        (x[150:], y[150:]),
        blocking=True,
        verbose=0,
        target="nano33ble",
    )
    board = keras.callbacks.TensorBoard(log_dir=str(root / "logs"))
    history = model.fit(
        x[:150],
        y[:150],
        validation_data=(x[150:], y[150:]),
        epochs=3,
        callbacks=[export, board],
        verbose=0,
    )
    return root / "logs", root / "exports", history.history


def _scalars(run_dir, tag):
    accumulator = plugin_event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)}


def _tags(run_dir):
    accumulator = plugin_event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator.Tags()["tensors"]


def test_int8_task_metrics_sit_beside_keras_validation_with_the_same_tags(run):
    logs, _, history = run
    runs = sorted(p.name for p in logs.iterdir())  # none empty: no streaming run without streaming
    assert runs == [
        "tflite",
        "train",
        "validation",
        "validation_tflite",
        "validation_tflite_litert",
    ]
    keras_loss = _scalars(logs / "validation", "epoch_loss")
    int8_loss = _scalars(logs / "validation_tflite", "epoch_loss")
    assert sorted(int8_loss) == sorted(keras_loss) == [0, 1, 2]
    assert [int8_loss[s] for s in range(3)] == pytest.approx(history["tflite_val_loss"])
    assert [
        _scalars(logs / "validation_tflite", "epoch_mae")[s] for s in range(3)
    ] == pytest.approx(history["tflite_val_mae"])


def test_fidelity_sizes_histograms_and_best_summary(run):
    logs, exports, history = run
    tags = set(_tags(logs / "tflite"))
    for tag in (
        "fidelity/mae_vs_float",
        "fidelity/snr_db_vs_float",
        "fidelity/normalized_rmse_vs_float",
        "litert/mae_vs_float",
        "litert/max_lsb_vs_micro",
        "size/model_bytes",
        "size/arena_bytes",
        "size/arena_bytes_reference",
        "size/arena_bytes_cmsis_nn",
        "latency/estimated_instructions",
        "latency/estimated_latency_ms",
        "time/export_seconds",
        "calibration/samples",
        "error/int8_minus_float_output_0",
        "best/manifest",
    ):
        assert tag in tags, tag
    mae = _scalars(logs / "tflite", "fidelity/mae_vs_float")
    assert [mae[s] for s in range(3)] == pytest.approx(history["tflite_mae_vs_float"])
    manifest = json.loads((exports / "best" / "manifest.json").read_text())
    step = manifest["epoch"] - 1
    assert _scalars(logs / "tflite", "size/model_bytes")[step] == manifest["model_bytes"]
    device = manifest["device"]
    assert (
        _scalars(logs / "tflite", "size/arena_bytes_cmsis_nn")[step]
        == (device["arena_bytes"]["cmsis_nn"])
    )
    assert _scalars(logs / "tflite", "latency/estimated_latency_ms")[step] == pytest.approx(
        device["target"]["latency_ms"], rel=1e-6
    )


def test_without_a_keras_tensorboard_summaries_go_under_the_export_directory(tmp_path):
    x = sample_inputs(build("mlp"), 120)["features"]
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    export = TFLiteExportCallback(tmp_path, x, (x, x[:, :1]), blocking=True, verbose=0)
    model.fit(x, x[:, :1], epochs=1, callbacks=[export], verbose=0)
    assert "epoch_loss" in _tags(tmp_path / "logs" / "validation_tflite")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_tensorboard_server_shows_the_overlaid_runs(run):
    logs, _, history = run
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logs),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tags = _get_json(
            port, "/data/plugin/scalars/tags", until=lambda t: "validation_tflite" in t
        )
        assert "epoch_loss" in tags["validation_tflite"] and "epoch_loss" in tags["validation"]
        points = _get_json(
            port, "/data/plugin/scalars/scalars?run=validation_tflite&tag=epoch_loss"
        )
        assert [p[2] for p in points] == pytest.approx(history["tflite_val_loss"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_json(port, path, until=lambda _: True, deadline=60.0):
    end = time.time() + deadline
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                data = json.loads(response.read())
            if until(data):
                return data
        except OSError:
            pass
        if time.time() > end:
            raise TimeoutError(f"TensorBoard did not serve {path} in {deadline} s")
        time.sleep(0.5)


def _image(run_dir, tag):
    accumulator = plugin_event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    event = accumulator.Tensors(tag)[-1]
    png = tf.make_ndarray(event.tensor_proto)[2]  # [width, height, encoded image]
    return tf.image.decode_png(png).numpy()


def test_prediction_plot_is_a_real_picture(run):
    logs, _, _ = run
    picture = _image(logs / "tflite", "images/predictions_float_vs_int8")
    assert picture.shape[0] > 200 and picture.shape[1] > 400
    assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 10  # lines, not a blank


def test_classifier_gets_a_confusion_matrix(tmp_path):
    model = build("conv2d_bn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = sample_inputs(model, 120)["image"]
    y = np.random.default_rng(0).integers(0, 3, 120)
    export = TFLiteExportCallback(tmp_path, (x, y), (x, y), blocking=True, verbose=0)
    model.fit(x, y, epochs=1, callbacks=[export], verbose=0)
    assert "images/confusion_matrix_int8" in _tags(tmp_path / "logs" / "tflite")


def test_layer_errors_of_the_best_model_as_table_and_scalars(tmp_path):
    model = build("conv2d_bn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = sample_inputs(model, 100)["image"]
    y = np.random.default_rng(0).integers(0, 3, 100)
    export = TFLiteExportCallback(
        tmp_path, (x, y), (x, y), layer_errors=True, images=False, blocking=True, verbose=0
    )
    model.fit(x, y, epochs=1, callbacks=[export], verbose=0)
    tags = set(_tags(tmp_path / "logs" / "tflite"))
    assert "best/layer_errors" in tags
    layer_tags = [t for t in tags if t.startswith("layers/") and t.endswith("/rmse")]
    assert layer_tags, tags
    manifest = json.loads((tmp_path / "best" / "manifest.json").read_text())
    rmses = [row["rmse"] for row in manifest["layer_errors"]]
    assert rmses == sorted(rmses, reverse=True) and rmses[0] > 0
    assert {"time/convert_seconds", "time/judge_seconds"} <= tags


def test_tf_keras_fit_with_its_tensorboard_gets_the_overlay(tmp_path):
    import tf_keras

    model = build("mlp", "tf_keras")
    model.compile(optimizer="adam", loss="mse")
    x = sample_inputs(model, 120)["features"]
    y = x[:, :1]
    board = tf_keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))
    export = TFLiteExportCallback(tmp_path / "exports", (x, y), (x, y), blocking=True, verbose=0)
    model.fit(x, y, validation_data=(x, y), epochs=2, callbacks=[board, export], verbose=0)
    assert sorted(_scalars(tmp_path / "tb" / "validation_tflite", "epoch_loss")) == [0, 1]


class _MyBoard(keras.callbacks.TensorBoard):
    """A user's TensorBoard subclass: found as a TensorBoard, whatever its name."""


def test_a_tensorboard_subclass_is_found_and_the_chosen_log_dir_is_said(tmp_path, capsys):
    x = sample_inputs(build("mlp"), 120)["features"]
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    board = _MyBoard(log_dir=str(tmp_path / "mine"))
    export = TFLiteExportCallback(tmp_path / "exports", x, (x, x[:, :1]), blocking=True)
    model.fit(x, x[:, :1], epochs=1, callbacks=[board, export], verbose=0)
    assert "epoch_loss" in _tags(tmp_path / "mine" / "validation_tflite")
    assert f"TensorBoard summaries in {tmp_path / 'mine'}" in capsys.readouterr().out


def test_exports_every_n_batches_each_get_their_own_step(tmp_path):
    x = sample_inputs(build("mlp"), 128)["features"]
    model = build("mlp")
    model.compile(optimizer="adam", loss="mse")
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))
    export = TFLiteExportCallback(
        tmp_path / "exports", x, (x, x[:, :1]), export_freq=2, blocking=True, verbose=0,
        tensorboard=board,
    )  # fmt: skip
    model.fit(x, x[:, :1], epochs=1, batch_size=32, callbacks=[export], verbose=0)  # 4 batches
    assert sorted(_scalars(tmp_path / "tb" / "validation_tflite", "epoch_loss")) == [2, 4]
