"""TF1 scripts that turn graph mode on for the whole process, as most do: the hook, convert_session
and the CLI on what they saved. Each style runs `tf1_graph_mode.py` in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_tflite.cli import main
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # a training script and real conversions

SCRIPT = Path(__file__).with_name("tf1_graph_mode.py")


@pytest.fixture(scope="module", params=["disable_eager_execution", "disable_v2_behavior"])
def script_run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), request.param, str(folder)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return request.param, folder, json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_the_hook_exports_in_the_background_under_graph_mode(script_run):
    _, folder, facts, printed = script_run
    assert facts["executing_eagerly"] is False  # the script ran in graph mode throughout
    records = [json.loads(line) for line in (folder / "exports" / "history.jsonl").open()]
    assert records and all(r["exportable"] for r in records[1:]), records
    assert "export failed" not in printed
    assert records[-1]["step"] == 120
    best = read_manifest(folder / "exports" / "best")
    assert best is not None and "UNIDIRECTIONAL_SEQUENCE_LSTM" in best["ops"]
    assert best["metrics"]["tflite_val_loss"] < records[0]["metrics"]["tflite_val_loss"]
    assert list((folder / "checkpoints" / "validation_tflite").iterdir())  # beside the session's


def test_convert_session_under_graph_mode_gives_the_fused_lstm(script_run):
    _, _, facts, _ = script_run
    assert facts["convert_session_ops"][0] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert facts["convert_session_nmae"] < 0.05


# Reference variables and control flow v1: the older of the two graphs.
@pytest.mark.parametrize("script_run", ["disable_v2_behavior"], indirect=True)
def test_the_cli_converts_a_checkpoint_written_in_graph_mode(script_run, tmp_path, capsys):
    _, folder, _, _ = script_run
    sys.path.insert(0, str(SCRIPT.parent))
    from tf1_graph_mode import data

    train, val = data()
    np.savez(tmp_path / "cal.npz", series=train[0])
    np.savez(tmp_path / "val.npz", series=val[0])
    code = main(["convert", str(folder / "checkpoints"), "-o", str(tmp_path / "out"),
                 "--calibration", str(tmp_path / "cal.npz"), "--validation",
                 str(tmp_path / "val.npz"), "--outputs", "prediction", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["ops"][0] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert report["metrics"]["normalized_rmse_vs_float"] < 0.05
