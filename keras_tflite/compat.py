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
