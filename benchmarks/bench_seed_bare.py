"""The bare converter call the benchmarks compare the engine against."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf


def bare_seconds(model, train) -> float:
    """Seconds of a bare in-process int8 conversion of the seed's LSTM weights (tf_keras recipe)."""
    import tf_keras

    inputs = tf_keras.Input((120, 3), batch_size=1)
    twin = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(tf_keras.layers.LSTM(16)(inputs)))
    twin.set_weights(model.get_weights())
    samples = train[0][np.random.default_rng(0).choice(len(train[0]), 500, replace=False)]
    began = time.perf_counter()
    function = tf.function(lambda x: twin(x)).get_concrete_function(
        tf.TensorSpec((1, 120, 3), tf.float32)
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], twin)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    size = len(converter.convert())
    seconds = time.perf_counter() - began
    print(f"{'bare tf_keras':<16} {size:>8} B  convert {seconds:5.1f} s (in-process, no isolation)")
    return seconds
