"""The hourly forecaster as a microcontroller runs it from a sensor loop: one reading per call.

Trains the seed's Keras 3 LSTM with `TFLiteExportCallback(..., streaming=True)`: each export
also converts the model's one-step form (one hourly reading in; the next-hour forecast and the
LSTM state out), judged by stepping through every validation window in TFLite Micro. The best
is kept in exports_stream/best/stream/ (model.tflite, C array, model_ops.h with `ModelStream`,
a once-per-sample sketch). Then it feeds five days of readings one at a time, as a device
would, and prints the forecast and what each new reading costs against the window model.
Run: python examples/forecast_streaming.py [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
import seattle  # noqa: E402
from forecast_lstm import build_model  # noqa: E402

from keras_tflite import StreamingModel, TFLiteExportCallback  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="exports_stream")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    train, val, (mean, std) = seattle.windows()
    model = build_model()
    export = TFLiteExportCallback(args.out, train, val, streaming=True)
    model.fit(*train, validation_data=val, epochs=args.epochs, batch_size=64, callbacks=[export])

    folder = Path(args.out) / "best" / "stream"
    manifest = json.loads((folder / "manifest.json").read_text())
    stream = StreamingModel(folder / "model.tflite")  # TFLite Micro
    stream.reset()
    window = val[0][-1]  # the last five days: 120 hourly readings of 3 features
    for reading in window:  # what a sensor interrupt hands the model, once an hour
        forecast = stream.step(reading)
    float_forecast = model.predict(window[None], verbose=0)[0, 0]
    print(f"\nStreaming model: {folder}/ ({manifest['model_bytes']} bytes, ops {manifest['ops']})")
    degrees = forecast[0] * std + mean
    print(
        f"  after {len(window)} readings, one per call: next hour {degrees:.2f} °F "
        f"(the float window model: {float_forecast * std + mean:.2f} °F)"
    )
    metrics = manifest["metrics"]
    print(
        f"  over the validation windows: int8 streaming vs float window "
        f"{metrics['tflite_stream_mae_vs_float'] * std:.3f} °F MAE, forecast MAE "
        f"{metrics['tflite_stream_val_mae'] * std:.2f} °F (TFLite Micro)"
    )
    cost = manifest["cost"]
    step, whole = cost["per_sample"], cost["per_window"]
    print(
        f"  per new reading: {step['instructions'] / 1e3:.0f}k instructions against "
        f"{whole['instructions'] / 1e3:.0f}k for the whole window on a Cortex-M4 "
        f"({cost['window_over_sample_work']:g}x less, estimated; TFLite Micro here "
        f"{step['invoke_seconds'] * 1e6:.1f} against {whole['invoke_seconds'] * 1e6:.0f} µs); "
        f"arena {int(step['arena_bytes'])} B against {int(whole['arena_bytes'])} B, and no "
        "window of readings to keep in RAM"
    )


if __name__ == "__main__":
    main()
