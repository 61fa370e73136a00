"""The callback's cost to training, on the seed's LSTM (ratios measured in one run).

Prints: fit wall time with the callback exporting every epoch / fit without it (including the
wait for the last export at train end); time the callback blocks the training thread per export;
export latency / a bare in-process converter call; parent RSS growth over N exports.
Run: python benchmarks/callback_overhead.py [--epochs 5] [--exports 50]
"""

from __future__ import annotations

import argparse
import resource
import time

import _seed
import keras
from bench_seed_bare import bare_seconds

from keras_tflite import TFLiteExportCallback
from keras_tflite.exporter import Exporter


class _Timed(TFLiteExportCallback):
    """Measures how long each epoch end holds the training thread."""

    blocked: list[float] = []
    final_wait = 0.0

    def on_epoch_end(self, epoch, logs=None):
        began = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.blocked.append(time.perf_counter() - began)

    def on_train_end(self, logs=None):
        began = time.perf_counter()
        super().on_train_end(logs)
        _Timed.final_wait = time.perf_counter() - began


def _fit_seconds(model, train, val, epochs, callbacks) -> float:
    began = time.perf_counter()
    model.fit(
        *train, validation_data=val, epochs=epochs, batch_size=64, callbacks=callbacks, verbose=0
    )
    return time.perf_counter() - began


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--exports", type=int, default=50)
    args = parser.parse_args()

    model, train, val, _ = _seed.trained_lstm(epochs=1)
    weights = model.get_weights()
    plain = _fit_seconds(model, train, val, args.epochs, [])
    model.set_weights(weights)
    callback = _Timed("/tmp/keras_tflite_bench", train, val, verbose=0)
    with_callback = _fit_seconds(model, train, val, args.epochs, [callback])
    print(
        f"fit {args.epochs} epochs: {plain:.1f} s plain, {with_callback:.1f} s with the callback "
        f"(ratio {with_callback / plain:.2f}x)"
    )
    during = with_callback - callback.final_wait
    print(
        f"  of which waiting for the last export at train end: {callback.final_wait:.1f} s; "
        f"ratio without that wait {during / plain:.2f}x"
    )
    print(
        f"training thread blocked per export: max {max(callback.blocked) * 1000:.1f} ms, "
        f"mean {sum(callback.blocked) / len(callback.blocked) * 1000:.1f} ms"
    )

    exporter = Exporter(
        model,
        train,
        val,
        quantization="int8",
        batch_size=1,
        num_calibration_samples=500,
        seed=0,
        strategies=None,
        timeout=600,
    )
    if not args.exports:
        return
    before = _rss_mb()
    latencies = []
    for _ in range(args.exports):
        began = time.perf_counter()
        judged = exporter.export(model.get_weights())
        latencies.append(time.perf_counter() - began)
        if judged.error:
            print("export failed:", judged.error)
    grown = _rss_mb() - before
    exporter.close()
    bare = bare_seconds(model, train)
    mean = sum(latencies) / len(latencies)
    print(
        f"export latency (convert + judge in LiteRT and TFLite Micro): mean {mean:.1f} s, "
        f"bare converter call {bare:.1f} s (ratio {mean / bare:.2f}x)"
    )
    print(
        f"parent RSS growth over {args.exports} exports: {grown:.1f} MB "
        f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )
    keras.backend.clear_session()


if __name__ == "__main__":
    main()
