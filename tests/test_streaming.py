"""Streaming models: one time step per call with the recurrent state carried between calls,
agreeing with the float window model in TFLite Micro and LiteRT."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tflm_api import write_stand_ins

import keras_tflite
from keras_tflite import StreamingModel

L = keras.layers
STEPS, FEATURES = 30, 3


def _data():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (600, STEPS, FEATURES)), axis=1).astype(np.float32)
    y = (x[:, -1, :1] + 0.5 * x[:, -6, 1:2]).astype(np.float32)
    return x, y


def _model(kind: str):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES), name="series")
    if kind == "stacked_lstm":  # a per-step layer before, two LSTMs, a head after
        h = L.Dense(8, activation="relu")(inputs)
        h = L.LSTM(8)(L.LSTM(16, return_sequences=True)(h))
    else:
        h = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind](16)(inputs)
    return keras.Model(inputs, L.Dense(1, name="next")(h))


@pytest.fixture(scope="module")
def streamed():
    x, y = _data()
    found = {}
    for kind in ("lstm", "stacked_lstm", "gru", "simple_rnn"):
        model = _model(kind)
        model.compile(optimizer="adam", loss="mse")
        model.fit(x[:500], y[:500], epochs=3, batch_size=32, verbose=0)
        found[kind] = (model, keras_tflite.convert(model, x[:500], streaming=True))
    return x[500:], found


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["micro", "litert"])
@pytest.mark.parametrize("kind", ["lstm", "stacked_lstm", "gru", "simple_rnn"])
def test_stepping_agrees_with_the_float_window_model(streamed, kind, runtime):
    sequences, found = streamed
    model, result = found[kind]
    assert result.strategy == "streaming" and "WHILE" not in result.ops
    assert int(np.prod(result.inputs[0].shape)) == FEATURES  # one time step, batch 1
    # LSTMs run fused, their state kept inside; other cells feed their state out and back in.
    lstm = kind in ("lstm", "stacked_lstm")
    assert ("UNIDIRECTIONAL_SEQUENCE_LSTM" in result.ops) == lstm
    assert len(result.inputs) == (1 if lstm else 2)
    stream = StreamingModel(result.tflite, runtime)
    window = model.predict(sequences, verbose=0)
    final = stream.predict(sequences)
    assert float(np.mean(np.abs(final - window)) / np.std(window)) <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "gru"])  # state inside the model, state fed back
def test_the_state_is_carried_between_calls_and_reset_restores_it(streamed, kind):
    sequences, found = streamed
    _, result = found[kind]
    stream = StreamingModel(result.tflite)
    every = stream.predict(sequences[:4], all_steps=True)
    assert every.shape == (4, STEPS, 1)
    stream.reset()
    for t in range(STEPS):  # one sample per call, as a sensor loop does
        out = stream.step(sequences[0, t])
        assert out == pytest.approx(every[0, t])
    # Without a reset, the next sequence starts from the first one's final state.
    carried = stream.step(sequences[1, 0])
    assert abs(float(carried[0]) - float(every[1, 0, 0])) > 0.01
    stream.reset()
    fresh = [stream.step(sequences[1, t]) for t in range(STEPS)]
    assert np.array_equal(fresh[0], every[1, 0]) and np.array_equal(fresh[-1], every[1, -1])


@pytest.mark.slow
def test_state_fed_back_is_named_paired_and_shares_its_quantization(streamed):
    _, found = streamed
    model, result = found["gru"]
    gru = next(layer.name for layer in model.layers if type(layer).__name__ == "GRU")
    inputs, outputs = result.inputs, result.outputs
    assert [inputs[0].name, outputs[0].name] == ["series", "next"]
    assert [t.name for t in inputs[1:]] == [f"{gru}_h"]
    assert [t.name for t in outputs[1:]] == [f"{gru}_h_next"]
    # The int8 state goes back in as it came out: one scale and zero point for both.
    assert (inputs[1].scale, inputs[1].zero_point) == (outputs[1].scale, outputs[1].zero_point)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda i: L.Bidirectional(L.LSTM(4))(i), "Bidirectional layer"),
        (lambda i: L.LSTM(4)(L.Conv1D(4, 3)(i)), "Conv1D layer"),
        (lambda i: L.LSTM(4)(L.AveragePooling1D(2)(i)), "AveragePooling1D layer"),
        (lambda i: L.Dense(1)(L.LSTM(4, return_sequences=True)(i)), "an output at every step"),
        (lambda i: L.Dense(1)(L.Flatten()(i)), "Expected an LSTM, GRU or SimpleRNN layer"),
        (lambda i: L.LSTM(4)(L.RepeatVector(5)(L.LSTM(4)(i))), "after one with return_seq"),
        (lambda i: L.Dense(1)(L.LSTM(4)(i)[:, :2]), "no operation between layers"),
    ],
)
def test_models_without_a_streaming_form_are_refused_before_converting(build, message):
    inputs = keras.Input((STEPS, FEATURES), name="series")
    model = keras.Model(inputs, build(inputs))
    with pytest.raises(ValueError, match=message):
        keras_tflite.convert(model, np.zeros((4, STEPS, FEATURES), np.float32), streaming=True)


def test_a_model_with_two_inputs_is_refused():
    a, b = keras.Input((STEPS, FEATURES), name="a"), keras.Input((2,), name="b")
    model = keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.LSTM(4)(a), b])))
    with pytest.raises(ValueError, match=r"Expected one input of shape \(time, features\)"):
        keras_tflite.convert(model, {"a": np.zeros((4, STEPS, FEATURES)), "b": np.zeros((4, 2))},
                             streaming=True)  # fmt: skip


def test_streaming_model_refuses_a_window_model(tmp_path):
    inputs = keras.Input((4,), name="features")
    result = keras_tflite.convert(keras.Model(inputs, L.Dense(1)(inputs)), np.ones((8, 4)))
    with pytest.raises(ValueError, match="Expected a streaming model"):
        StreamingModel(result.tflite)


# ---- in the callback: best/stream/ beside the window model --------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from keras_tflite import TFLiteExportCallback

    directory = tmp_path_factory.mktemp("stream_fit")
    x, y = _data()
    model = _model("lstm")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    callback = TFLiteExportCallback(
        directory, x[:500], (x[500:], y[500:]), streaming=True, blocking=True, verbose=0
    )
    model.fit(x[:500], y[:500], epochs=2, batch_size=32, callbacks=[callback], verbose=0)
    return directory, model, x[500:], y[500:]


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_callback_keeps_a_complete_hash_consistent_streaming_set(fitted):
    import json

    directory, model, x_val, y_val = fitted
    best = directory / "best"
    manifest = json.loads((best / "manifest.json").read_text())
    stream_manifest = json.loads((best / "stream" / "manifest.json").read_text())
    names = ["model.tflite", "model_data.h", "model_data.cc", "model_ops.h", "model.ino"]
    for name in names:  # listed, with its hash, in both manifests
        assert manifest["files"][f"stream/{name}"]["sha256"] == _sha256(best / "stream" / name)
        assert stream_manifest["files"][name]["sha256"] == _sha256(best / "stream" / name)
    assert manifest["stream"]["folder"] == "stream/"
    assert "g_model_stream" in (best / "stream" / "model_data.h").read_text()
    # Judged as a device runs it: stepping through each validation sequence in TFLite Micro.
    metrics = manifest["metrics"]
    stream = StreamingModel((best / "stream" / "model.tflite").read_bytes())
    final = stream.predict(x_val[:256])
    assert float(np.mean(np.abs(final - y_val[:256]))) == pytest.approx(
        metrics["tflite_stream_val_mae"], rel=1e-4
    )
    assert metrics["tflite_stream_normalized_rmse_vs_float"] < 0.15
    cost = stream_manifest["cost"]
    assert cost["per_sample"]["arena_bytes"] > 0 and cost["per_window"]["arena_bytes"] > 0
    assert cost["window_over_sample_work"] > 5  # 30 steps a window, one a sample
    history = [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]
    assert all("tflite_stream_mae_vs_float" in r["metrics"] for r in history)


# A stand-in interpreter whose Invoke() hands the int8 inputs to TFLite Micro (in Python, over a
# pipe) and takes its int8 outputs back: ModelStream runs against the real kernels and bytes.
_PROGRAM = """#include <cstdio>
#include <vector>
#include "model_ops.h"
struct Relay {
  std::vector<std::vector<int8_t>> in, out;
  std::vector<TfLiteTensor> in_t, out_t;
  Relay(std::vector<int> in_sizes, std::vector<int> out_sizes) {
    for (int n : in_sizes) in.push_back(std::vector<int8_t>(n));
    for (int n : out_sizes) out.push_back(std::vector<int8_t>(n));
    for (auto& v : in) { TfLiteTensor t; t.data.int8 = v.data(); in_t.push_back(t); }
    for (auto& v : out) { TfLiteTensor t; t.data.int8 = v.data(); out_t.push_back(t); }
  }
  void Reset() { std::printf("reset\\n"); std::fflush(stdout); }
  TfLiteTensor* input(int i) { return &in_t[i]; }
  const TfLiteTensor* output(int i) { return &out_t[i]; }
  TfLiteStatus Invoke() {
    for (auto& v : in) { for (int8_t q : v) std::printf("%d ", q); std::printf("| "); }
    std::printf("\\n");
    std::fflush(stdout);
    for (auto& v : out) for (auto& q : v) { int r; if (std::scanf("%d", &r) != 1) return kTfLiteError; q = (int8_t)r; }
    return kTfLiteOk;
  }
};
int main() {
  Relay relay(IN_SIZES, OUT_SIZES);
  ModelStream<Relay> stream(&relay);
  const float samples[] = SAMPLES;
  float out[kStreamOutputSize];
  for (int t = 0; t < STEPS_; ++t) {
    if (stream.Step(samples + t * FEATURES_, out) != kTfLiteOk) return 1;
  }
  std::printf("final");
  for (int i = 0; i < kStreamOutputSize; ++i) std::printf(" %.9g", out[i]);
  std::printf("\\n");
  return 0;
}
"""


@pytest.fixture(scope="module")
def gru_stream_folder(streamed, tmp_path_factory):
    """A GRU's streaming set, as the callback writes it: its state fed out and back in."""
    from keras_tflite.deploy import firmware
    from keras_tflite.runtime.flatbuffer import model_io

    folder = tmp_path_factory.mktemp("gru_stream")
    sequences, found = streamed
    result = found["gru"][1]
    stream = StreamingModel(result.tflite)
    stream.predict(sequences[:1])
    state = model_io(result.tflite)["state"]
    (folder / "model.tflite").write_bytes(result.tflite)
    (folder / "model_ops.h").write_text(
        firmware.model_header(result.ops, result.inputs, result.outputs, stream.arena_bytes, state)
    )
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("design", ["state_inside", "state_fed_back"])
def test_the_generated_model_stream_steps_like_streaming_model(
    design, fitted, gru_stream_folder, tmp_path
):
    import subprocess

    from tflite_micro.python.tflite_micro import runtime

    directory, _, x_val, _ = fitted
    folder = directory / "best" / "stream" if design == "state_inside" else gru_stream_folder
    tflite = (folder / "model.tflite").read_bytes()
    stream = StreamingModel(tflite)
    ins, outs = stream.runner.inputs, stream.runner.outputs
    write_stand_ins(tmp_path)  # TFLite Micro's current API (tests/tflm_api.py)
    sequence = x_val[3]
    program = (
        _PROGRAM.replace("IN_SIZES", "{" + ", ".join(str(int(np.prod(t.shape))) for t in ins) + "}")
        .replace("OUT_SIZES", "{" + ", ".join(str(int(np.prod(t.shape))) for t in outs) + "}")
        .replace("SAMPLES", "{" + ", ".join(f"{v!r}f" for v in sequence.ravel().tolist()) + "}")
        .replace("STEPS_", str(STEPS))
        .replace("FEATURES_", str(FEATURES))
    )
    (tmp_path / "main.cc").write_text(program)
    binary = tmp_path / "stream"
    subprocess.run(
        ["g++", "-std=c++11", f"-I{tmp_path}", f"-I{folder}", "-o", str(binary),
         str(tmp_path / "main.cc")],
        check=True,
    )  # fmt: skip
    micro = runtime.Interpreter.from_bytes(tflite)
    process = subprocess.Popen(
        [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    steps = 0
    for line in process.stdout:
        if line.startswith("final"):
            final = np.array(line.split()[1:], np.float32)
            break
        if line.startswith("reset"):  # ModelStream::Reset(): the fused LSTM's state zeroed
            micro.reset()
            continue
        for position, values in enumerate(line.split("|")[:-1]):
            shape = micro.get_input_details(position)["shape"]
            micro.set_input(np.array(values.split(), np.int8).reshape(shape), position)
        micro.invoke()
        raw = [micro.get_output(p).ravel() for p in range(len(outs))]
        process.stdin.write(" ".join(str(int(v)) for r in raw for v in r) + "\n")
        process.stdin.flush()
        steps += 1
    assert process.wait(timeout=60) == 0 and steps == STEPS
    expected = stream.predict(sequence[None])
    np.testing.assert_allclose(final, np.ravel(expected), atol=1.5 * outs[0].scale)
