"""Evidence for the default calibration size: int8 error of the seed's LSTM against sample count,
and num_calibration_samples="auto" against the largest draw the data allows (the seed's eventual
choice was 10,000 samples; its training set holds fewer windows, so all of them are used)."""

from __future__ import annotations

import time

import _seed

import keras_tflite

SIZES = (10, 25, 50, 100, 250, 500, 1000, 2000)


def main() -> None:
    model, train, val, std = _seed.trained_lstm()
    expected = model.predict(val[0], verbose=0)
    print("samples  MAE vs float °F (LiteRT)  (mean of 3 seeds)  convert s")
    for size in SIZES:
        errors, seconds = [], []
        for seed in range(3):
            began = time.perf_counter()
            result = keras_tflite.convert(model, train, num_calibration_samples=size, seed=seed)
            seconds.append(time.perf_counter() - began)
            got = keras_tflite.TFLiteModel(result.tflite).predict(val[0])
            errors.append(_seed.mae_degrees(got, expected, std))
        print(
            f"{size:>7}  {sum(errors) / 3:>24.3f}  max {max(errors):.3f}  {sum(seconds) / 3:>9.1f}"
        )


def auto_against_all(model, train, val, std) -> None:
    expected = model.predict(val[0], verbose=0)
    for label, size in (("auto", "auto"), ("all", 10_000)):
        began = time.perf_counter()
        result = keras_tflite.convert(model, train, num_calibration_samples=size)
        seconds = time.perf_counter() - began
        got = keras_tflite.TFLiteModel(result.tflite).predict(val[0])
        print(
            f"{label:>5}: {result.num_calibration_samples:>6} samples, MAE vs float "
            f"{_seed.mae_degrees(got, expected, std):.3f} °F, convert {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
