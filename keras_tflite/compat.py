"""TensorFlow internals keras-tflite relies on, looked up in one place, each with a fallback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Runs the block eagerly on this thread, even when the program turned eager execution off.

    TF1 scripts start with `tf.compat.v1.disable_eager_execution()` (or `disable_v2_behavior()`),
    which makes every thread build graph ops: Keras metrics and losses then return symbolic
    tensors, and summaries go into the training graph. The callback's own work (scoring the int8
    model, writing summaries) is not part of that graph.

    Fallback: without TensorFlow's `context.eager_mode`, the block runs in the program's mode.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        yield
        return
    try:
        from tensorflow.python.eager import context

        mode = context.eager_mode()
    except (ImportError, AttributeError):
        mode = contextlib.nullcontext()
    with mode:
        yield


def graph_dataset_elements(dataset: object, argument: str) -> Iterator[object] | None:
    """The elements of a `tf.data.Dataset` built in graph mode, as numpy; None for any other.

    A dataset made under `disable_eager_execution()` lives in the training graph and cannot be
    iterated eagerly. It is read from a copy of that graph in a session of its own, so the
    training graph gets no new ops (MonitoredTrainingSession finalizes it).

    Fallback: without the dataset's `_variant_tensor`, it is treated as an eager dataset.

    Raises:
        ValueError: naming `argument`, for a dataset that needs a feed (a placeholder) or an
            initialized variable of the training session to produce its elements.
    """
    import tensorflow as tf

    variant = getattr(dataset, "_variant_tensor", None)
    if variant is None or not tf.is_symbolic_tensor(variant):
        return None
    return _graph_elements(variant, dataset.element_spec, argument)


def _graph_elements(variant: object, spec: object, argument: str) -> Iterator[object]:
    import tensorflow as tf

    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        tf1.import_graph_def(variant.graph.as_graph_def(), name="")
        copied = tf.data.experimental.from_variant(graph.get_tensor_by_name(variant.name), spec)
        following = tf1.data.make_one_shot_iterator(copied).get_next()
    with tf1.Session(graph=graph) as session:
        while True:
            try:
                yield session.run(following)
            except tf.errors.OutOfRangeError:
                return
            except tf.errors.OpError as error:
                raise ValueError(
                    f"Expected {argument} to be numpy arrays, or a tf.data.Dataset that makes its "
                    "elements itself (from arrays or files). Received: a graph-mode dataset that "
                    f"needs the training session ({error.message.splitlines()[0]}). Pass the "
                    "arrays it reads instead."
                ) from None


# The converter's step from its float flatbuffer to the quantized one (tensorflow/lite/python/
# lite.py). Re-quantization watches it; without it, every export is converted in full.
_QUANTIZER_STEP = "_optimize_tflite_model"


def quantizer_step(converter: object) -> object | None:
    """The converter's own quantizing step, or None when this TensorFlow has none (then nothing
    is watched, and the fit converts each export in full)."""
    return getattr(converter, _QUANTIZER_STEP, None)


def watch_quantizer_step(converter: object, step: object) -> None:
    """Makes `step` the converter's quantizing step, for this converter only."""
    setattr(converter, _QUANTIZER_STEP, step)


def unwatch_quantizer_step(converter: object) -> None:
    vars(converter).pop(_QUANTIZER_STEP, None)


def save_h5(model: object, path: str) -> None:
    """Saves a tf_keras model as `.h5` without the optimizer, by tf_keras' own HDF5 writer:
    `model.save` first builds a not-yet-trained model's compiled metrics with its outputs as
    targets, so "accuracy" turns into categorical accuracy for the whole fit (measured: sparse
    labels scored 0.147 instead of 0.120).

    Fallback: without that writer, `model.save` (and that quirk).
    """
    try:
        from tf_keras.src.saving.legacy import hdf5_format
    except ImportError:
        model.save(path, include_optimizer=False)
        return
    hdf5_format.save_model_to_hdf5(model, path, include_optimizer=False)


def with_conversion_metadata(model_object: object, metadata: object) -> object | None:
    """What the converter adds to a quantized model last (its sparsity modes, model hash and
    conversion metadata: `tensorflow/lite/python/lite.py`), on `model_object`.

    Fallback: None when this TensorFlow has other steps (re-quantization then gives way to a
    full conversion).
    """
    from tensorflow.lite.python import lite

    try:
        modes, model_hash = lite._get_sparsity_modes, lite._get_model_hash
        populate = lite._populate_conversion_metadata
    except AttributeError:
        return None
    metadata.options.modelOptimizationModes.extend(modes(model_object))
    metadata.environment.modelHash = model_hash(model_object)
    return populate(model_object, metadata)
