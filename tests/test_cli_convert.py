"""`keras-tflite convert` and `compare` on every saved format, each built here, run in TFLite Micro."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_tflite import MicroModel
from keras_tflite.cli import main

pytestmark = pytest.mark.slow  # real conversions and training

tf1 = tf.compat.v1
RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(300, 8)).astype(np.float32)


def _tf1_graph(directory):
    """A TF1 training graph (placeholders, Adam, a Saver), trained briefly; returns the prefix."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 8], name="features")
        y = tf1.placeholder(tf.float32, [None, 1], name="target")
        w1, b1 = tf1.get_variable("w1", [8, 16]), tf1.get_variable("b1", [16])
        w2, b2 = tf1.get_variable("w2", [16, 1]), tf1.get_variable("b2", [1])
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
        out = tf.identity(tf.matmul(hidden, w2) + b2, name="prediction")
        loss = tf.reduce_mean(tf.square(out - y))
        train = tf1.train.AdamOptimizer(0.01).minimize(loss)
        saver = tf1.train.Saver()
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            for _ in range(30):
                session.run(train, {x: FEATURES, y: FEATURES[:, :1] * 2})
            prefix = saver.save(session, str(directory / "ckpt" / "model"))
            frozen = tf1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), ["prediction"]
            )
            expected = session.run(out, {x: FEATURES[:50]})
    (directory / "frozen.pb").write_bytes(frozen.SerializeToString())
    return prefix, expected


def _keras3(path):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16, "relu")(inputs)))
    model.save(path)
    return model.predict(FEATURES[:50], verbose=0)


def _h5(path):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((8,), name="features")
    h = tf_keras.layers.Dense(16, activation="relu")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(h))
    model.save(path)
    return model.predict(FEATURES[:50], verbose=0)


def _saved_model(path):
    class Regressor(tf.Module):
        def __init__(self):
            self.w = tf.Variable(RNG.normal(size=(8, 1)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="features")])
        def __call__(self, features):
            return {"prediction": tf.nn.relu(tf.matmul(features, self.w))}

    module = Regressor()
    tf.saved_model.save(module, str(path), signatures=module.__call__)
    return module(FEATURES[:50])["prediction"].numpy()


def _convert(source, out, *extra):
    code = main(["convert", str(source), "-o", str(out), "--calibration", str(out.parent / "cal.npz"),
                 "--validation", str(out.parent / "cal.npz"), "--json", *extra])  # fmt: skip
    return code


@pytest.mark.parametrize(
    "kind", ["checkpoint_prefix", "checkpoint_dir", "frozen_graph", "h5", "saved_model", "keras"]
)
def test_every_format_converts_to_int8_that_runs_in_tflite_micro(tmp_path, kind, capsys):
    np.savez(tmp_path / "cal.npz", features=FEATURES)
    if kind.startswith("checkpoint") or kind == "frozen_graph":
        prefix, expected = _tf1_graph(tmp_path)
        source = {"checkpoint_prefix": prefix, "checkpoint_dir": tmp_path / "ckpt",
                  "frozen_graph": tmp_path / "frozen.pb"}[kind]  # fmt: skip
    else:
        source = tmp_path / {"h5": "m.h5", "saved_model": "saved", "keras": "m.keras"}[kind]
        expected = {"h5": _h5, "saved_model": _saved_model, "keras": _keras3}[kind](source)

    assert _convert(source, tmp_path / "out") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"][0]["dtype"] == "int8" and report["inputs"][0]["shape"] == [1, 8]
    assert report["tflite_micro"]["runs"] and report["tflite_micro"]["arena_bytes"] > 0
    if kind.startswith("checkpoint"):
        assert report["outputs"][0]["name"] == "prediction"  # found, not given
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model_bytes"] == len((tmp_path / "out" / "model.tflite").read_bytes())
    # The microcontroller's answer is the float model's, within int8 error.
    micro = MicroModel((tmp_path / "out" / "model.tflite").read_bytes()).predict(FEATURES[:50])
    spread = float(np.std(expected))
    assert float(np.mean(np.abs(micro - expected))) < 0.05 * spread
    assert report["metrics"]["mae_vs_float"] < 0.05 * spread


def test_ambiguous_outputs_are_listed_by_name(tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 8], name="features")
        tf.identity(tf.nn.relu(x), name="positive")
        tf.identity(-x, name="negative")
    (tmp_path / "two.pb").write_bytes(graph.as_graph_def().SerializeToString())
    np.savez(tmp_path / "cal.npz", features=FEATURES)

    assert _convert(tmp_path / "two.pb", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "2 candidate outputs" in error and "'positive'" in error and "'negative'" in error
    assert not (tmp_path / "out").exists()
    assert _convert(tmp_path / "two.pb", tmp_path / "out", "--outputs", "negative") == 0


def test_unknown_input_dimension_asks_for_input_shape(tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, None], name="series")
        tf.identity(tf.reduce_mean(x, axis=1, keepdims=True) * 2.0, name="level")
    (tmp_path / "g.pb").write_bytes(graph.as_graph_def().SerializeToString())
    np.savez(tmp_path / "cal.npz", series=FEATURES)

    assert _convert(tmp_path / "g.pb", tmp_path / "out") == 2
    assert "--input-shape series:1," in capsys.readouterr().err
    assert _convert(tmp_path / "g.pb", tmp_path / "out", "--input-shape", "series:1,8") == 0


def test_lambda_layers_are_refused_without_trust(tmp_path, capsys):
    import keras

    inputs = keras.Input((8,), name="features")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs))
    model.save(tmp_path / "lambda.keras")
    np.savez(tmp_path / "cal.npz", features=FEATURES)

    assert _convert(tmp_path / "lambda.keras", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "['double']" in error and "--trust" in error
    assert not (tmp_path / "out").exists()


def test_a_small_validation_file_is_not_mistaken_for_calibration(tmp_path, recwarn):
    _keras3(tmp_path / "m.keras")
    np.savez(tmp_path / "cal.npz", features=FEATURES)
    np.savez(tmp_path / "val.npz", features=FEATURES[:20])
    code = main(["convert", str(tmp_path / "m.keras"), "-o", str(tmp_path / "out"),
                 "--calibration", str(tmp_path / "cal.npz"),
                 "--validation", str(tmp_path / "val.npz"), "--json"])  # fmt: skip
    assert code == 0
    assert not [w for w in recwarn if "calibration" in str(w.message)], [
        str(w.message) for w in recwarn
    ]


def test_a_named_kernel_set_and_target_size_the_header_and_the_manifest(tmp_path, capsys):
    _keras3(tmp_path / "m.keras")
    np.savez(tmp_path / "cal.npz", features=FEATURES)
    assert _convert(tmp_path / "m.keras", tmp_path / "out", "--kernels", "reference",
                    "--target", "nucleo_l4r5zi") == 0  # fmt: skip
    device = json.loads((tmp_path / "out" / "manifest.json").read_text())["device"]
    arena = device["arena_bytes"]["reference"]
    assert device["tensor_arena_size"] == arena < device["arena_bytes"]["cmsis_nn"]
    header = (tmp_path / "out" / "model_ops.h").read_text()
    assert f"kTensorArenaSize = {arena};" in header
    instructions = device["instructions"]["cortex-m4/reference"]
    assert device["target"]["latency_ms"] == pytest.approx(instructions * 1.3 / 120e6 * 1e3, 1e-3)
    assert json.loads(capsys.readouterr().out)["tflite_micro"]["arena_bytes"] == arena


def test_an_unfaithful_conversion_is_written_but_said_and_exits_4(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(0)
    x = np.linspace(0, 2 * np.pi, 600, dtype=np.float32)[:, None]
    inputs = keras.Input((1,), name="angle")
    hidden = keras.layers.Dense(16, "relu")(keras.layers.Dense(16, "relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, np.sin(x), epochs=60, batch_size=32, verbose=0)
    model.save(tmp_path / "sine.keras")
    np.savez(tmp_path / "cal.npz", angle=x[:5])  # the first five angles: 0 to 0.04 rad
    np.savez(tmp_path / "val.npz", angle=x[::3])
    code = main(["convert", str(tmp_path / "sine.keras"), "-o", str(tmp_path / "out"),
                 "--calibration", str(tmp_path / "cal.npz"),
                 "--validation", str(tmp_path / "val.npz"), "--json"])  # fmt: skip
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 4 and report["exit_code"] == 4
    assert f"not deployable: {report['not_deployable']}" in captured.err  # said, even with --json
    # Flat or not faithful: the callback's verdict, in TFLite Micro, with the CLI's advice.
    assert re.match(
        r"(flat-line output|not a faithful copy) in TFLite Micro", report["not_deployable"]
    )
    assert (
        "(calibrated on only 5 samples: pass a --calibration file with more samples)"
        in (report["not_deployable"])
    )
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["not_deployable"] == report["not_deployable"]


def test_a_broken_keras_archive_is_a_usage_error_that_says_what_is_missing(tmp_path, capsys):
    import zipfile

    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")  # no config.json
    np.savez(tmp_path / "cal.npz", features=FEATURES)
    assert _convert(tmp_path / "broken.keras", tmp_path / "out") == 2
    assert "Expected a .keras archive holding config.json" in capsys.readouterr().err
    (tmp_path / "text.keras").write_text("not a zip")
    assert _convert(tmp_path / "text.keras", tmp_path / "out") == 2
    assert "Expected a .keras file (a zip archive)" in capsys.readouterr().err


def test_calibration_that_does_not_match_names_the_inputs(tmp_path, capsys):
    _keras3(tmp_path / "m.keras")
    np.savez(tmp_path / "cal.npz", wrong=FEATURES, other=FEATURES)
    assert _convert(tmp_path / "m.keras", tmp_path / "out") == 2
    assert "named ['features']. Received: ['wrong', 'other']" in capsys.readouterr().err


def test_compare_reports_both_runtimes_and_whether_the_copy_is_faithful(tmp_path):
    prefix, _ = _tf1_graph(tmp_path)
    np.savez(tmp_path / "cal.npz", features=FEATURES)
    assert _convert(prefix, tmp_path / "out") == 0
    np.save(tmp_path / "data.npy", FEATURES[:40])
    run = subprocess.run(  # the installed command, as users run it
        [sys.executable, "-m", "keras_tflite.cli", "compare", str(tmp_path / "out" / "model.tflite"),
         "--reference", str(tmp_path / "frozen.pb"), "--data", str(tmp_path / "data.npy"), "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""  # no progress, no runtime chatter: the JSON says it all
    report = json.loads(run.stdout)
    assert report["samples"] == 40 and report["exit_code"] == 0
    assert report["tflite_micro"]["runs"] and report["faithful"]
    assert 0 < report["tflite_micro"]["mae"] < 0.05
    assert report["litert"]["snr_db"] > 20
    # Against a model it was not converted from (same input): not a faithful copy, exit 4.
    _keras3(tmp_path / "unrelated.keras")
    text = subprocess.run(
        [*run.args[:6], str(tmp_path / "unrelated.keras"), *run.args[7:-1]],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert text.returncode == 4, text.stderr[-3000:]
    assert "TFLite Micro: MAE" in text.stdout
    assert "a faithful copy in TFLite Micro: no" in text.stdout
    assert "comparing" in text.stderr and "40/40" in text.stderr  # the progress, on stderr
    verdict = text.stderr.splitlines()[-1]
    assert verdict.startswith("not faithful: not a faithful copy in TFLite Micro: normalized RMSE")
    assert "if --reference is the model it was converted from" in verdict


def test_several_outputs_keep_their_names_and_values(tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 8], name="features")
        weights = tf.constant(RNG.normal(size=(8, 4)).astype(np.float32))
        tf.identity(tf.matmul(x, weights), name="score_1")
        tf.identity(tf.nn.softmax(tf.matmul(x, weights[:, :2])), name="probs")
    (tmp_path / "two.pb").write_bytes(graph.as_graph_def().SerializeToString())
    np.savez(tmp_path / "cal.npz", features=FEATURES)

    assert _convert(tmp_path / "two.pb", tmp_path / "out", "--outputs", "score_1,probs") == 0
    report = json.loads(capsys.readouterr().out)
    shapes = {t["name"]: t["shape"] for t in report["outputs"]}
    assert shapes == {"score_1": [1, 4], "probs": [1, 2]}
    assert report["metrics"]["mae_vs_float"] < 0.05  # each output against its own float
