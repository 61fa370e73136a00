"""One input order and one set of names, from the Keras model to every artifact and runtime.

The converter orders a signature's inputs alphabetically; these models' Keras orders are not
alphabetical, so any artifact that trusted the interpreter's order would feed a tensor the wrong
data. Every check compares against TFLite Micro's own view of the bytes (`get_input_details`).
"""

from __future__ import annotations

import json
import subprocess

import keras
import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime
from tflm_api import write_stand_ins

import keras_tflite
from keras_tflite import MicroModel, TFLiteExportCallback, TFLiteModel
from keras_tflite.cli import main as cli_main
from keras_tflite.cli.inspect import inspect_model
from keras_tflite.deploy.firmware import c_identifier

pytestmark = pytest.mark.slow  # real conversions and training

L = keras.layers


def _models():
    """name -> (model, inputs by name): Keras orders that the converter's sorting changes."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    series, season = keras.Input((14, 4), name="series"), keras.Input((2,), name="season")
    h = L.Concatenate()([L.LSTM(8)(series), L.Dense(4, activation="relu")(season)])
    two_shapes = keras.Model(
        [series, season], [L.Dense(1, name="level")(h), L.Dense(3, "softmax", name="kind")(h)]
    )
    zeta, alpha = keras.Input((6,), name="zeta"), keras.Input((6,), name="alpha")
    same_shape = keras.Model(
        [zeta, alpha], L.Dense(2, name="out")(L.Concatenate()([zeta * 3.0, alpha]))
    )
    zulu, mike, alpha3 = (
        keras.Input((10, 3), name="zulu"),
        keras.Input((4,), name="mike"),
        keras.Input((4,), name="alpha"),
    )
    h = L.Concatenate()([L.LSTM(6)(zulu), L.Dense(4)(mike), L.Dense(4)(alpha3) * 0.5])
    three = keras.Model(
        [zulu, mike, alpha3], [L.Dense(2, name="zed")(h), L.Dense(1, name="able")(h)]
    )
    models = {"two_shapes": two_shapes, "same_shape": same_shape, "three": three}
    data = {}
    for name, model in models.items():
        data[name] = {
            t.name: np.cumsum(rng.normal(0, 0.4, (300, *t.shape[1:])), axis=1).astype(np.float32)
            if len(t.shape) == 3
            else rng.normal(0, 1, (300, *t.shape[1:])).astype(np.float32)
            for t in model.inputs
        }
    return models, data


@pytest.fixture(scope="module")
def converted():
    models, data = _models()
    return {
        name: (model, data[name], keras_tflite.convert(model, data[name]))
        for name, model in models.items()
    }


@pytest.mark.parametrize("name", ["two_shapes", "same_shape", "three"])
def test_the_tflite_file_is_in_the_models_order_under_its_names(converted, name, tmp_path):
    model, data, result = converted[name]
    keras_names = [t.name for t in model.inputs]
    assert keras_names != sorted(keras_names)  # the converter's own order would differ
    assert [t.name for t in result.inputs] == keras_names
    assert [t.name for t in result.outputs] == list(model.output_names)
    micro = runtime.Interpreter.from_bytes(result.tflite)
    for i, tensor in enumerate(model.inputs):  # what `interpreter->input(i)` is on a device
        details = micro.get_input_details(i)
        assert tuple(details["shape"]) == (1, *tensor.shape[1:])
        assert details["quantization_parameters"]["scales"][0] == pytest.approx(
            result.inputs[i].scale
        )
    report = inspect_model(result.save(tmp_path / "model.tflite"))
    assert [t["name"] for t in report["inputs"]] == keras_names
    assert [t["name"] for t in report["outputs"]] == list(model.output_names)


@pytest.mark.parametrize("runner", [TFLiteModel, MicroModel])
@pytest.mark.parametrize("name", ["two_shapes", "same_shape", "three"])
def test_predict_takes_a_list_in_the_models_order_or_a_dict(converted, name, runner):
    model, data, result = converted[name]
    sample = {k: v[:40] for k, v in data.items()}
    as_list = [sample[t.name] for t in model.inputs]
    expected = model.predict(as_list, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    by_list, by_dict = runner(result.tflite).predict(as_list), runner(result.tflite).predict(sample)
    by_list = by_list if isinstance(by_list, list) else [by_list]
    by_dict = by_dict if isinstance(by_dict, list) else [by_dict]
    for got_list, got_dict, want in zip(by_list, by_dict, expected):
        np.testing.assert_array_equal(got_list, got_dict)
        assert np.sqrt(np.mean((got_list - want) ** 2)) < 0.1 * np.std(want)


def test_a_list_for_a_file_that_does_not_record_the_order_is_refused(converted):
    import tensorflow as tf

    model, data, _ = converted["same_shape"]
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()  # float, not ours
    runner = TFLiteModel(tflite)
    with pytest.raises(
        ValueError,
        match=r"Expected inputs as a dict keyed by \[.*\]: this .tflite file does not record",
    ):
        runner.predict([data["zeta"][:4], data["alpha"][:4]])
    np.testing.assert_allclose(
        runner.predict({k: v[:4] for k, v in data.items()}),
        model.predict([data["zeta"][:4], data["alpha"][:4]], verbose=0),
        atol=1e-5,
    )


def _helpers_program(manifest, sample: dict[str, np.ndarray]) -> str:
    """C++ that quantizes `sample` with each input's helper into the tensor its index names,
    and prints each output's dequantization table from its own helper."""
    lines = ["#include <cstdio>", '#include "model_ops.h"', "int main() {"]
    for tensor in manifest["inputs"]:
        name = c_identifier(tensor["name"])
        values = ", ".join(f"{float(v)!r}f" for v in sample[tensor["name"]].ravel())
        lines += [
            f"  const float {name}_values[] = {{{values}}};",
            f'  std::printf("in %d", k{name}InputIndex);',
            f"  for (int i = 0; i < k{name}InputSize; ++i)"
            f' std::printf(" %d", (int)Quantize{name}({name}_values[i]));',
            '  std::printf("\\n");',
        ]
    for tensor in manifest["outputs"]:
        name = c_identifier(tensor["name"])
        lines += [
            f'  std::printf("out %d", k{name}OutputIndex);',
            f'  for (int q = -128; q < 128; ++q) std::printf(" %.9g", Dequantize{name}(q));',
            '  std::printf("\\n");',
        ]
    return "\n".join([*lines, "}"]) + "\n"


def test_callback_files_feed_each_input_its_own_tensor_on_the_device(tmp_path):
    models, data = _models()
    model, inputs = models["three"], data["three"]
    model.compile(optimizer="adam", loss=["mse", "mse"])
    targets = [np.zeros((300, 2), np.float32), np.zeros((300, 1), np.float32)]
    callback = TFLiteExportCallback(
        tmp_path / "out", inputs, (inputs, targets), monitor="tflite_mae_vs_float",
        blocking=True, verbose=0,
    )  # fmt: skip
    model.fit(inputs, targets, epochs=1, callbacks=[callback], verbose=0)
    best = tmp_path / "out" / "best"
    manifest = json.loads((best / "manifest.json").read_text())
    tflite = (best / "model.tflite").read_bytes()
    micro = runtime.Interpreter.from_bytes(tflite)
    assert [t["name"] for t in manifest["inputs"]] == ["zulu", "mike", "alpha"]
    for i, tensor in enumerate(manifest["inputs"]):
        details = micro.get_input_details(i)
        assert tuple(details["shape"]) == tuple(tensor["shape"])
        assert details["quantization_parameters"]["scales"][0] == pytest.approx(tensor["scale"])
        assert details["quantization_parameters"]["zero_points"][0] == tensor["zero_point"]

    # The generated helpers, compiled, quantize one sample; TFLite Micro runs exactly that.
    write_stand_ins(tmp_path)  # TFLite Micro's current API (tests/tflm_api.py)
    sample = {name: array[7:8] for name, array in inputs.items()}
    (tmp_path / "main.cc").write_text(_helpers_program(manifest, sample))
    binary = tmp_path / "helpers"
    subprocess.run(
        ["g++", "-std=c++11", f"-I{tmp_path}", f"-I{best}", "-o", str(binary),
         str(tmp_path / "main.cc")],
        check=True,
    )  # fmt: skip
    printed = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    tables = {}
    for line in printed.splitlines():
        kind, index, *values = line.split()
        if kind == "in":
            shape = micro.get_input_details(int(index))["shape"]
            micro.set_input(np.array(values, np.int8).reshape(shape), int(index))
        else:
            tables[int(index)] = np.array(values, np.float32)
    micro.invoke()
    expected = MicroModel(tflite).predict(sample)
    for position, want in enumerate(expected):
        raw = micro.get_output(position).astype(np.int32)
        np.testing.assert_allclose(tables[position][raw + 128], want, rtol=1e-6)

    sketch = (best / "model.ino").read_text()
    for name in ("Zulu", "Mike", "Alpha"):
        assert f"interpreter->input(k{name}InputIndex)" in sketch
        assert f"Quantize{name}(value)" in sketch
    for name in ("Zed", "Able"):  # every output, every element
        assert f"interpreter->output(k{name}OutputIndex)" in sketch
        assert f"i < k{name}OutputSize" in sketch


def test_every_path_names_the_model_alike(tmp_path):
    """The callback, `convert()`, the CLI and `inspect` use the model's own input and output
    names, so firmware written against one path builds against another."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))  # unnamed: Keras names the layer 'input_layer...'
    model = keras.Model(inputs, L.Dense(2)(L.Dense(8, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    y = x[:, :2]
    callback = TFLiteExportCallback(tmp_path / "fit", x, (x, y), blocking=True, verbose=0)
    model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "cal.npy", x)
    code = cli_main(
        ["convert", str(tmp_path / "model.keras"), "-o", str(tmp_path / "cli"),
         "--calibration", str(tmp_path / "cal.npy"), "--json"]
    )  # fmt: skip
    assert code == 0
    fit = json.loads((tmp_path / "fit" / "best" / "manifest.json").read_text())
    cli = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    result = keras_tflite.convert(model, x)
    report = inspect_model(tmp_path / "cli" / "model.tflite")
    for key in ("inputs", "outputs"):
        names = [t["name"] for t in fit[key]]
        assert names == [t["name"] for t in cli[key]] == [t["name"] for t in report[key]]
        assert names == [t.name for t in getattr(result, key)]
    assert fit["inputs"][0]["name"].startswith("input_layer")
    assert fit["outputs"][0]["name"] == model.output_names[0]
    helper = f"Quantize{c_identifier(fit['inputs'][0]['name'])}("
    assert helper in (tmp_path / "fit" / "best" / "model_ops.h").read_text()
    assert helper in (tmp_path / "cli" / "model_ops.h").read_text()


def test_cli_files_describe_input_i_as_the_tensor_the_device_fills(converted, tmp_path):
    """`keras-tflite convert` of a saved three-input model: manifest, model_ops.h and the file
    agree with TFLite Micro on which tensor is input i, and it predicts like the model."""
    model, data, _ = converted["three"]
    model.save(tmp_path / "three.keras")
    np.savez(tmp_path / "cal.npz", **data)
    code = cli_main(
        ["convert", str(tmp_path / "three.keras"), "-o", str(tmp_path / "cli"),
         "--calibration", str(tmp_path / "cal.npz"), "--json"]
    )  # fmt: skip
    assert code == 0
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert [t["name"] for t in manifest["inputs"]] == [t.name for t in model.inputs]
    tflite = (tmp_path / "cli" / "model.tflite").read_bytes()
    micro = runtime.Interpreter.from_bytes(tflite)
    header = (tmp_path / "cli" / "model_ops.h").read_text()
    for i, described in enumerate(manifest["inputs"]):
        details = micro.get_input_details(i)
        assert tuple(details["shape"][1:]) == tuple(described["shape"][1:])
        assert details["quantization_parameters"]["scales"][0] == pytest.approx(described["scale"])
        assert f"Quantize{c_identifier(described['name'])}(" in header
    expected = model.predict([data[t.name][:50] for t in model.inputs], verbose=0)
    got = MicroModel(tflite).predict([data[t.name][:50] for t in model.inputs])
    for want, have in zip(expected, got):
        assert float(np.mean(np.abs(want - have))) < 0.05 * float(np.std(want))
