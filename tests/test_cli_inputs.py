"""`keras-tflite` on bad input: one clear line and exit 2 before any model loads, JSON on stdout
with --json, every exit code in every --help, and no runtime chatter. No conversion: the model
is the one tflite_micro ships."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tflite_micro

from keras_tflite.cli import main
from keras_tflite.worker import supervisor

SINE = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Every case here must be refused before the worker loads a model (seconds)."""

    def started(self):
        raise AssertionError("the worker started: the input was not checked before it")

    monkeypatch.setattr(supervisor.Worker, "start", started)


@pytest.fixture
def files(tmp_path):
    """A valid .tflite, a reference the worker would have to load, and data that fits both."""
    tflite = SINE.read_bytes()
    (tmp_path / "model.tflite").write_bytes(tflite)
    (tmp_path / "frozen.pb").write_bytes(b"only the worker would find out")
    np.save(tmp_path / "data.npy", np.linspace(0, 6, 50, dtype=np.float32)[:, None])
    return tmp_path


def _compare(files, model="model.tflite", data="data.npy", *extra):
    return main(["compare", str(files / model), "--reference", str(files / "frozen.pb"),
                 "--data", str(files / data), *extra])  # fmt: skip


def _bad_tflite(files, kind: str) -> str:
    path = files / "bad.tflite"
    tflite = SINE.read_bytes()
    if kind == "missing":
        return "nope.tflite"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(tflite[: len(tflite) - 200])
    elif kind == "text":
        path.write_text("a text file, not a model\n")
    elif kind == "keras archive":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{}")
    return path.name


BAD_TFLITE = {
    "missing": "which does not exist",
    "empty": "an empty file (0 bytes)",
    "truncated": "a TFLite flatbuffer of 2964 bytes that fails verification: truncated",
    "text": "without the TFLite identifier 'TFL3'",
    "keras archive": "a zip archive (a .keras model",
}


@pytest.mark.parametrize("command", ["compare", "inspect"])
@pytest.mark.parametrize("kind", list(BAD_TFLITE))
def test_a_bad_tflite_is_refused_in_one_line(files, command, kind, capsys):
    name = _bad_tflite(files, kind)
    if command == "compare":
        code = _compare(files, name)
    else:
        code = main(["inspect", str(files / name)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1  # one line, no traceback, no C++ message
    assert "Expected MODEL to be a .tflite file (a TFLite flatbuffer). Received:" in captured.err
    assert name in captured.err and BAD_TFLITE[kind] in captured.err


BAD_DATA = {
    "missing": "Expected --data to be a .npy or .npz file of numpy arrays. Received: '{path}', "
    "which does not exist.",
    "empty file": "Expected --data to be a .npy or .npz file of numpy arrays. Received: "
    "'{path}', an empty file (0 bytes).",
    "not numpy": "Expected --data to be a .npy or .npz file of numpy arrays. Received: "
    "'{path}', which is neither (it begins b'1,2,3\\n').",
    "no samples": "Expected --data to hold at least one sample (arrays of shape (samples, ...)). "
    "Received: '{path}', holding an array of shape (0, 1).",
    "wrong shape": "Expected --data input 'dense_input' (sample 0) to have per-sample shape (1,) "
    "in batches. Received: an array of shape (50, 3).",
    "missing input": "Expected --data to hold an array per input, named ['dense_input']. "
    "Received: ['x', 'y'] (missing ['dense_input']).",
    "uneven counts": "Expected every array of --data to hold the same number of samples. "
    "Received: '{path}', holding {{'dense_input': 50, 'other': 20}}.",
}


def _bad_data(files, kind: str) -> Path:
    path = files / ("bad.npy" if kind in ("no samples", "wrong shape") else "bad.npz")
    column = np.zeros((50, 1), np.float32)
    if kind == "missing":
        return files / "nope.npz"
    if kind == "empty file":
        path.write_bytes(b"")
    elif kind == "not numpy":
        path.write_text("1,2,3\n")
    elif kind == "no samples":
        np.save(path, column[:0])
    elif kind == "wrong shape":
        np.save(path, np.zeros((50, 3), np.float32))
    elif kind == "missing input":
        np.savez(path, x=column, y=column)
    elif kind == "uneven counts":
        np.savez(path, dense_input=column, other=column[:20])
    return path


@pytest.mark.parametrize("kind", list(BAD_DATA))
def test_bad_compare_data_is_checked_against_the_tflite_inputs(files, kind, capsys):
    path = _bad_data(files, kind)
    assert _compare(files, data=path.name) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("keras-tflite compare: " + BAD_DATA[kind].format(path=path))


@pytest.mark.parametrize("kind", ["missing", "empty file", "not numpy", "no samples"])
@pytest.mark.parametrize("option", ["--calibration", "--validation"])
def test_bad_convert_data_is_refused_before_the_model_loads(files, kind, option, capsys):
    path = _bad_data(files, kind)
    data = {"--calibration": files / "data.npy", option: path}
    argv = ["convert", str(files / "frozen.pb"), "-o", str(files / "out")]
    assert main(argv + [str(a) for item in data.items() for a in item]) == 2
    expected = BAD_DATA[kind].format(path=path).replace("--data", option)
    assert capsys.readouterr().err.startswith("keras-tflite convert: " + expected)
    assert not (files / "out").exists()


@pytest.mark.parametrize("option", ["--calibration", "--validation"])
def test_a_keras_files_declared_input_shape_is_checked_before_the_model_loads(
    files, option, capsys
):
    import keras

    inputs = [keras.Input((24, 3), name="series"), keras.Input((4,), name="meta")]
    merged = keras.layers.Concatenate()([keras.layers.Flatten()(inputs[0]), inputs[1]])
    keras.Model(inputs, keras.layers.Dense(1)(merged)).save(files / "model.keras")
    np.savez(files / "good.npz", series=np.zeros((5, 24, 3), "f4"), meta=np.zeros((5, 4), "f4"))
    np.savez(files / "bad.npz", series=np.zeros((5, 3, 24), "f4"), meta=np.zeros((5, 4), "f4"))
    data = {"--calibration": files / "good.npz", option: files / "bad.npz"}
    argv = ["convert", str(files / "model.keras"), "-o", str(files / "out")]
    assert main(argv + [str(a) for item in data.items() for a in item]) == 2
    assert capsys.readouterr().err == (
        f"keras-tflite convert: Expected {option} input 'series' to have per-sample shape "
        "(24, 3), as the model declares it. Received: an array of shape (5, 3, 24).\n"
    )


def test_int8_without_calibration_is_refused_before_the_model_loads(files, capsys):
    assert main(["convert", str(files / "frozen.pb"), "-o", str(files / "out")]) == 2
    assert "Expected --calibration FILE for --quantization int8" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "m.tflite", "--json"], "the following arguments are required: --reference"),
        (["compare", "m.tflite", "--reference", "r", "--data", "d", "--max-normalized-rmse",
          "-1", "--json"], "argument --max-normalized-rmse: Expected a positive number"),
        (["inspect", "{sine}", "--target", "pico", "--json"], "Expected target to be one of"),
        (["inspect", "{truncated}", "--json"], "fails verification: truncated"),
        (["compare", "{sine}", "--reference", "{frozen}", "--data", "{missing}", "--json"],
         "Expected --data to be a .npy or .npz file"),
    ],
)  # fmt: skip
def test_json_errors_are_json_on_stdout(files, argv, message, capsys):
    paths = {"sine": SINE, "frozen": files / "frozen.pb", "missing": files / "nope.npz",
             "truncated": files / _bad_tflite(files, "truncated")}  # fmt: skip
    assert main([a.format(**paths) for a in argv]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["exit_code"] == 2 and message in report["error"]
    assert message in captured.err  # said to the person too


@pytest.mark.parametrize("command", [[], ["inspect"], ["convert"], ["compare"]])
def test_every_help_lists_every_exit_code(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    section = capsys.readouterr().out.split("Exit codes:\n")[1]
    meanings = " ".join(section.split()).split(" 4 ")  # the lines as one text, wrapping undone
    assert [line[:5] for line in section.splitlines() if line[:3].strip()] == [
        f"  {code}  " for code in range(5)
    ]
    assert ("not used" in meanings[1]) == (command == ["inspect"])
    assert command == ["inspect"] or "not a faithful copy" in meanings[1]


def test_inspect_prints_the_report_and_no_runtime_chatter():
    done = subprocess.run(  # the command as users run it: C++ runtimes print to this stderr
        [sys.executable, "-m", "keras_tflite.cli", "inspect", str(SINE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dense_input: float32 (1, 1), not quantized" in done.stdout
    assert "TFLite Micro: runs" in done.stdout
    assert done.stderr == ""  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" too
