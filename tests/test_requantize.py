"""Re-quantized exports are what a full conversion of the same snapshot gives: the real converter
converts in full beside every re-quantization checked here, in the same worker."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from conftest import build, sample_inputs

from keras_tflite.exporter import Exporter

pytestmark = pytest.mark.slow  # real conversions and training

_SEEDS = itertools.count()


def _train(model, data, callbacks=()) -> None:
    """An epoch on random targets: every weight moves."""
    rng = np.random.default_rng(next(_SEEDS))
    inputs = list(data.values())  # in the model's input order
    targets = [
        rng.normal(size=(len(inputs[0]), *o.shape[1:])).astype(np.float32) for o in model.outputs
    ]
    model.fit(
        inputs if len(inputs) > 1 else inputs[0],
        targets if len(targets) > 1 else targets[0],
        verbose=0,
        callbacks=list(callbacks),
    )


def _exports(model, count: int = 2, callbacks=()):
    """`count` exports of `model`, trained an epoch before each; (judged, warnings) of each, and
    the full conversion's verdict on the last re-quantized one."""
    data = sample_inputs(model, 200)
    model.compile(optimizer="adam", loss="mse")
    exporter = Exporter(model, data, data, num_calibration_samples=200)
    try:
        done, said = [], []
        for _ in range(count):
            _train(model, data, callbacks)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                judged = exporter.export(model.get_weights())
            assert judged.error is None, judged.error
            done.append(judged)
            said.append([str(w.message) for w in caught])
        last = done[-1]
        if last.result.path == "requantized":
            assert exporter.verify(model.get_weights(), last) is last
        return done, said
    finally:
        exporter.close()


@pytest.mark.parametrize(
    "name",
    [
        "lstm",  # the fused LSTM op
        "stacked_lstm",  # with the scale barrier
        "bidirectional_lstm",
        "gru",  # unrolled loops
        "simple_rnn",
        "conv1d",
        "depthwise",  # DepthwiseConv2D and a 1x1 Conv2D
        "mlp",  # Dense
        "embedding_lstm",
        "two_input",
    ],
)
def test_a_later_snapshot_is_requantized_to_exactly_its_full_conversion(name):
    (first, later), said = _exports(build(name))
    assert first.result.path == "converted"  # the template is made and checked here
    assert later.result.path == "requantized"
    assert later.result.verified == "identical bytes"
    assert later.result.tflite != first.result.tflite  # new weights, new model
    assert said == [[], []]
    assert later.metrics["normalized_rmse_vs_float"] < 0.15  # judged like any export


def test_a_batchnorm_folded_into_a_convolution_sends_the_fit_to_full_conversion():
    (first, later), said = _exports(build("conv2d_bn"))
    assert [first.result.path, later.result.path] == ["converted", "converted"]
    assert len(said[0]) == 1 and "computed from the weights" in said[0][0]
    assert "BatchNormalization folded" in said[0][0]
    assert said[1] == []  # said once
    for judged in (first, later):  # but in every export's manifest
        assert "BatchNormalization folded" in judged.result.full_conversion_note
        assert judged.result.describe()["verified"] == "converted in full"


def test_a_pruned_tf_keras_model_is_requantized():
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        build("mlp", "tf_keras"),
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0, frequency=1),
    )
    (first, later), said = _exports(pruned, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    assert later.result.path == "requantized" and later.result.verified == "identical bytes"
    assert later.result.sparsity and min(later.result.sparsity.values()) >= 0.5
