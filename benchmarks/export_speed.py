"""What an export costs (ratios measured in one run, medians over repeats): the seed's LSTM and
the digits CNN, each against a bare in-process converter call of the same model.

Prints per model: the bare call; `keras_tflite.convert()` / bare; the fit's first export (a full
conversion that also makes the re-quantization template) / bare; a later export (its path, and
re-quantized + judged) / bare; a new best's check against its full conversion / bare; `fit` with
the callback at its defaults / without, including the wait for the last export, and how long an
epoch end holds the training thread; parent RSS growth
over N exports in one fit (an export every batch), and the worker's peak RSS and restarts.
Run: python benchmarks/export_speed.py [--repeats 3] [--epochs 8] [--exports 200]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _seed
import keras
import numpy as np
import tensorflow as tf
from bench_seed_bare import bare_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from classify_digits import build_model  # noqa: E402
from digits import digits  # noqa: E402

import keras_tflite  # noqa: E402
from keras_tflite import TFLiteExportCallback  # noqa: E402
from keras_tflite.exporter import Exporter  # noqa: E402


def _bare_keras3(model, samples) -> float:
    """A bare in-process int8 conversion of a Keras 3 model: a fixed-batch concrete function,
    frozen (with its variables left in, a BatchNormalization fails calibration: READ_VARIABLE)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    began = time.perf_counter()
    spec = tf.TensorSpec((1, *model.inputs[0].shape[1:]), tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    converter.convert()
    return time.perf_counter() - began


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS")).split()[1]) / 1024


def _nudged(weights, rng) -> list[np.ndarray]:
    """A new snapshot: every weight moved a little, as an epoch of training does."""
    return [w + rng.normal(0, 1e-3, w.shape).astype(w.dtype) for w in weights]


def _export_costs(model, train, val, repeats: int) -> dict[str, float]:
    exporter = Exporter(model, train[0], val, niceness=10)  # as in training
    rng = np.random.default_rng(0)
    weights = model.get_weights()
    try:
        began = time.perf_counter()
        first = exporter.export(weights)
        costs = {"first": time.perf_counter() - began}
        later, checks, path = [], [], None
        for _ in range(max(repeats, 3)):
            snapshot = _nudged(weights, rng)
            began = time.perf_counter()
            judged = exporter.export(snapshot)
            later.append(time.perf_counter() - began)
            path = judged.result.path
            if path == "requantized":
                began = time.perf_counter()
                exporter.verify(snapshot, judged)
                checks.append(time.perf_counter() - began)
                verified = judged.result.verified
        costs["later"] = statistics.median(later)
        costs["check"] = statistics.median(checks) if checks else float("nan")
        costs["path"] = path
        costs["verified"] = verified if checks else "-"
        costs["first_error"] = first.error
    finally:
        exporter.close()
    return costs


class _Timed(TFLiteExportCallback):
    """Measures how long each epoch end holds the training thread, and the final wait."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocked: list[float] = []
        self.final_wait = 0.0

    def on_epoch_end(self, epoch, logs=None):
        began = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.blocked.append(time.perf_counter() - began)

    def on_train_end(self, logs=None):
        began = time.perf_counter()
        super().on_train_end(logs)
        self.final_wait = time.perf_counter() - began


def _fit_seconds(model, weights, train, val, epochs, callbacks, batch_size) -> float:
    model.set_weights(weights)
    began = time.perf_counter()
    model.fit(
        *train,
        validation_data=val,
        epochs=epochs,
        batch_size=batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    return time.perf_counter() - began


class _Rss(keras.callbacks.Callback):
    """Parent RSS once the first exports are done (one-time allocations) and at the end."""

    def __init__(self, export: TFLiteExportCallback, after: int):
        super().__init__()
        self.export, self.after, self.start, self.end = export, after, None, None

    def on_train_batch_end(self, batch, logs=None):
        self.seen = getattr(self, "seen", 0) + 1
        if self.start is None and self.seen == self.after:
            self.start = _rss_mb()

    def on_train_end(self, logs=None):
        self.end = _rss_mb()


def _many_exports(model, train, val, exports: int, batch_size: int) -> str:
    directory = tempfile.mkdtemp(prefix="keras_tflite_bench_")
    callback = TFLiteExportCallback(
        directory, train[0], val, export_freq=1, blocking=True, verbose=0, images=False
    )
    rss = _Rss(callback, after=10)
    per_epoch = -(-len(train[0]) // batch_size)
    epochs = -(-exports // per_epoch)
    try:
        model.fit(
            *train, epochs=epochs, batch_size=batch_size, callbacks=[callback, rss], verbose=0
        )
        history = (Path(directory) / "history.jsonl").read_text().splitlines()
        paths = [line for line in history if '"conversion": "requantized"' in line]
        return (
            f"{len(history)} exports ({len(paths)} re-quantized) in one fit: parent RSS grew "
            f"{rss.end - rss.start:.1f} MB after the 10th"
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _report(name, model, train, val, bare_call, args) -> None:
    bares = [bare_call() for _ in range(args.repeats)]
    bare = statistics.median(bares)
    print(f"\n== {name}: bare in-process converter call {bare:.2f} s (median of {len(bares)})")
    converts = []
    for _ in range(args.repeats + 1):
        began = time.perf_counter()
        keras_tflite.convert(model, train[0])
        converts.append(time.perf_counter() - began)
    convert = statistics.median(converts[1:])
    print(
        f"keras_tflite.convert(): {convert:.2f} s = {convert / bare:.2f}x bare (median of later "
        f"calls); the first call in a process {converts[0]:.2f} s = {converts[0] / bare:.2f}x "
        "(it starts the worker, which imports TensorFlow)"
    )
    costs = _export_costs(model, train, val, args.repeats)
    print(f"first export of a fit (convert + template + judge): {costs['first'] / bare:.2f}x bare")
    print(
        f"later export ({costs['path']}, judged): {costs['later']:.2f} s = "
        f"{costs['later'] / bare:.2f}x bare"
    )
    if costs["path"] == "requantized":
        print(
            f"a new best's check against its full conversion ({costs['verified']}): "
            f"{costs['check']:.2f} s = {costs['check'] / bare:.2f}x bare"
        )
    weights = model.get_weights()
    plain, with_callback, blocked, waits = [], [], [], []
    for _ in range(args.repeats):
        plain.append(_fit_seconds(model, weights, train, val, args.epochs, [], args.batch_size))
        callback = _Timed(tempfile.mkdtemp(prefix="keras_tflite_bench_"), train[0], val, verbose=0)
        with_callback.append(
            _fit_seconds(model, weights, train, val, args.epochs, [callback], args.batch_size)
        )
        blocked += callback.blocked
        waits.append(callback.final_wait)
        shutil.rmtree(callback.directory, ignore_errors=True)
    ratios = [c / p for c, p in zip(with_callback, plain)]
    print(
        f"fit {args.epochs} epochs: {statistics.median(plain):.1f} s plain, "
        f"{statistics.median(with_callback):.1f} s with the callback (ratio "
        f"{statistics.median(ratios):.2f}x median; each: {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"the last export's wait at train end {statistics.median(waits):.1f} s; an epoch end "
        f"holds training {statistics.median(blocked) * 1000:.1f} ms (median), "
        f"{max(blocked) * 1000:.1f} ms at most"
    )
    model.set_weights(weights)
    print(_many_exports(model, train, val, args.exports, args.batch_size))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--exports", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", choices=["lstm", "digits"])
    args = parser.parse_args()
    if args.only != "digits":
        model, train, val, _ = _seed.trained_lstm(epochs=1)
        _report("seed LSTM", model, train, val, lambda: bare_seconds(model, train), args)
    if args.only != "lstm":
        keras.utils.set_random_seed(0)
        train, val = digits()
        model = build_model()
        model.fit(*train, epochs=1, batch_size=32, verbose=0)
        samples = train[0][np.random.default_rng(0).choice(len(train[0]), 500, replace=False)]
        _report("digits CNN", model, train, val, lambda: _bare_keras3(model, samples), args)


if __name__ == "__main__":
    main()
