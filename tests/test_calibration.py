"""Representative data in every form a Keras user has, sized in samples, checked before converting."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tflite.data.calibration import collect
from keras_tflite.specs import TensorInfo

SERIES = [TensorInfo("series", (5, 2), "float32")]
TWO = [TensorInfo("series", (5, 2), "float32"), TensorInfo("meta", (3,), "float32")]


def _data(count=40):
    x = np.arange(count * 10, dtype=np.float32).reshape(count, 5, 2)
    return x, np.arange(count, dtype=np.float32)[:, None]


class _Windows(keras.utils.PyDataset):
    def __init__(self, x, y, batch):
        super().__init__()
        self.x, self.y, self.batch = x, y, batch

    def __len__(self):
        return -(-len(self.x) // self.batch)

    def __getitem__(self, i):
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]


def _forms():
    x, y = _data()
    return {
        "array": x,
        "xy_tuple": (x, y),
        "dict": {"series": x},
        "dataset_unbatched": tf.data.Dataset.from_tensor_slices((x, y)),
        "dataset_batched": tf.data.Dataset.from_tensor_slices((x, y)).batch(7),
        "generator_of_batches": (x[i : i + 8] for i in range(0, len(x), 8)),
        "generator_of_samples": ((x[i], y[i]) for i in range(len(x))),
        "py_dataset": _Windows(x, y, 16),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_gives_the_same_samples(form):
    calibration = collect(_forms()[form], SERIES, num_samples=40, seed=3)
    np.testing.assert_array_equal(calibration.arrays["series"], _data()[0])
    assert calibration.available == 40


@pytest.mark.parametrize("batch", [1, 4, 256])
def test_size_is_in_samples_whatever_the_batch_size(batch):
    x, y = _data(300)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    assert collect(dataset, SERIES, num_samples=100).num_samples == 100


def test_draw_is_random_seeded_and_reproducible():
    x, _ = _data(500)
    first = collect(x, SERIES, num_samples=50, seed=7)
    again = collect(iter(list(x)), SERIES, num_samples=50, seed=7)
    other = collect(x, SERIES, num_samples=50, seed=8)
    assert list(first.source_indices) != list(range(50))  # not just the head of the data
    np.testing.assert_array_equal(first.arrays["series"], x[first.source_indices])
    assert list(collect(x, SERIES, num_samples=50, seed=7).source_indices) == list(
        first.source_indices
    )
    assert list(other.source_indices) != list(first.source_indices)
    assert again.num_samples == 50


def test_two_inputs_by_name_or_in_order():
    x, _ = _data()
    meta = np.ones((40, 3), np.float32)
    by_name = collect({"meta": meta, "series": x}, TWO, num_samples=10)
    in_order = collect([x, meta], TWO, num_samples=10)
    np.testing.assert_array_equal(by_name.arrays["series"], in_order.arrays["series"])


def test_wrong_shape_names_input_sample_and_shapes():
    bad = (np.zeros((2, 5, 2), np.float32) for _ in range(1))
    samples = iter([np.zeros((5, 2), np.float32), np.zeros((4, 2), np.float32)])
    with pytest.raises(
        ValueError,
        match=r"input 'series' \(sample 1\).*\(5, 2\).*Received: an array of shape \(4, 2\)",
    ):
        collect(samples, SERIES)
    with pytest.raises(ValueError, match=r"input 'series'.*\(5, 2\) in batches.*\(3, 4, 2\)"):
        collect(np.zeros((3, 4, 2), np.float32), SERIES)
    assert collect(bad, SERIES).num_samples == 2


def test_missing_input_name_is_reported():
    with pytest.raises(
        ValueError,
        match=r"keyed by the model's input names \['series', 'meta'\]. Received keys: \['series'\]",
    ):
        collect({"series": _data()[0]}, TWO)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_input_and_sample(value):
    x, _ = _data()
    x[17, 2, 1] = value
    with pytest.raises(
        ValueError, match=rf"input 'series' to hold finite values.*Received: {value} in sample 17"
    ):
        collect(x, SERIES, num_samples=40)


def test_empty_data_is_refused():
    with pytest.raises(ValueError, match="at least one sample. Received: no samples"):
        collect(iter([]), SERIES)


def test_batches_given_as_count_are_refused():
    with pytest.raises(ValueError, match="count of samples, not batches"):
        collect(_data()[0], SERIES, num_samples=0)


def test_too_few_samples_warns():
    with pytest.warns(UserWarning, match="holds only 12 samples"):
        collect(_data(12)[0], SERIES)


def _heavy_tailed(count, seed=0):
    """Series whose amplitude varies a lot from sample to sample: a few samples set the range."""
    rng = np.random.default_rng(seed)
    scale = rng.lognormal(0.0, 1.0, (count, 1, 1)).astype(np.float32)
    return (rng.normal(0, 1, (count, 24, 3)) * scale).astype(np.float32)


def test_auto_size_stops_when_ranges_converge():
    from conftest import build

    import keras_tflite

    model = build("conv1d")
    bounded = np.random.default_rng(0).uniform(-1, 1, (3000, 24, 3)).astype(np.float32)
    settled = keras_tflite.convert(model, bounded, num_calibration_samples="auto")
    assert settled.num_calibration_samples in (500, 1000)  # bounded data: ranges settle early
    growing = keras_tflite.convert(model, _heavy_tailed(5000), num_calibration_samples="auto")
    # Rare large samples keep widening the ranges: auto keeps drawing.
    assert growing.num_calibration_samples > settled.num_calibration_samples


def test_a_clearly_short_fixed_size_warns_with_evidence():
    from conftest import build

    import keras_tflite

    with pytest.warns(
        UserWarning,
        match=r"10 calibration samples look short: with 40 samples the range of '.*' is \d+% wider",
    ):
        keras_tflite.convert(build("conv1d"), _heavy_tailed(400), num_calibration_samples=10)


def test_auto_or_count_only():
    from conftest import build

    import keras_tflite

    with pytest.raises(
        ValueError,
        match=r'positive integer \(a count of samples, not batches\) or "auto". Received: \'some\'',
    ):
        keras_tflite.convert(build("conv1d"), _heavy_tailed(10), num_calibration_samples="some")
