"""The seed's LSTM (120 hourly steps x 3 features -> next temperature): the engine's figures.

Prints, for the fused form and for unroll=True: int8 size, TFLite Micro arena, int8 vs float MAE
in °F (LiteRT and TFLite Micro), conversion seconds; and the engine's conversion time divided by a
bare in-process converter call on the same weights (tf_keras fixed-batch recipe, the one bare
path that converts this model without crashing).
"""

from __future__ import annotations

import time

import _seed
from bench_seed_bare import bare_seconds

import keras_tflite


def engine_row(label, model, train, val, std):
    began = time.perf_counter()
    result = keras_tflite.convert(model, train)
    seconds = time.perf_counter() - began
    expected = model.predict(val[0], verbose=0)
    lite = keras_tflite.TFLiteModel(result.tflite).predict(val[0])
    micro = keras_tflite.MicroModel(result.tflite)
    got_micro = micro.predict(val[0])
    print(
        f"{label:<16} {result.size:>8} B  arena {micro.arena_bytes:>7} B  "
        f"MAE vs float °F LiteRT {_seed.mae_degrees(lite, expected, std):.3f} "
        f"TFLM {_seed.mae_degrees(got_micro, expected, std):.3f}  "
        f"convert {seconds:5.1f} s  ops {len(result.ops)} ({result.strategy})"
    )
    return seconds, result


def main() -> None:
    model, train, val, std = _seed.trained_lstm()
    engine_seconds, _ = engine_row("fused (engine)", model, train, val, std)
    unrolled, *_ = _seed.trained_lstm(unroll=True)
    engine_row("unroll=True", unrolled, train, val, std)
    bare = bare_seconds(model, train)
    print(f"engine / bare converter time: {engine_seconds / bare:.2f}x")


if __name__ == "__main__":
    main()
