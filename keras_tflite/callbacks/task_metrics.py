"""The model's own compiled loss and metrics, evaluated afresh on the int8 model's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np


def task_metrics(
    config: dict[str, Any] | None, targets: list[np.ndarray] | None, outputs: list[np.ndarray]
) -> dict[str, float]:
    """`loss` and each compiled metric by its Keras name, for single-output models.

    Args:
        config: The model's compile config (`compile_config(model)`).
        targets: The validation targets, one array per output.
        outputs: A runtime's outputs on the validation inputs.

    Fresh loss and metric objects are built from the compile config, so training state is never
    touched. Returns {} when the model is not compiled or has several outputs.
    """
    if not config or len(outputs) != 1 or targets is None or len(targets) != 1:
        return {}
    import keras

    y_true, y_pred = targets[0], outputs[0]
    results = {}
    if config.get("loss") is not None:
        loss = keras.losses.get(config["loss"])
        results["loss"] = float(np.mean(keras.ops.convert_to_numpy(loss(y_true, y_pred))))
    for metric in compiled_metrics(config, y_true, y_pred):
        metric.update_state(y_true, y_pred)
        results[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
    return results


def compile_config(model: Any) -> dict[str, Any] | None:
    """The model's compile config, or None when it is not compiled."""
    try:
        config = model.get_compile_config()
    except (AttributeError, NotImplementedError):
        return None
    return config or None


def compiled_metrics(
    config: dict[str, Any] | None,
    y_true: np.ndarray | None = None,
    y_pred: np.ndarray | None = None,
) -> list[Any]:
    """Fresh Keras 3 metric objects for the compiled metrics, named as Keras logs them.
    Without arrays, "accuracy" stands for its family (all of it goes up)."""
    if not config:
        return []
    return [_metric(spec, y_true, y_pred) for spec in _flat_metrics(config.get("metrics"))]


def _flat_metrics(metrics: Any) -> list[Any]:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = list(metrics.values())
    flat = []
    for m in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        flat.extend(m if isinstance(m, (list, tuple)) else [m])
    return flat


def _metric(spec: Any, y_true: np.ndarray | None, y_pred: np.ndarray | None) -> Any:
    import keras

    if spec in ("accuracy", "acc"):  # resolved as Keras' compile does, from the shapes
        if y_pred is None or y_true is None or y_pred.shape[-1] == 1:
            return keras.metrics.BinaryAccuracy(name="accuracy")
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == y_pred.shape[-1]:
            return keras.metrics.CategoricalAccuracy(name="accuracy")
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    metric = keras.metrics.get(spec)
    if isinstance(metric, keras.metrics.Metric):
        config = metric.get_config()
        if isinstance(spec, str):
            config["name"] = spec  # Keras logs "mae" under the name it was compiled with
        return metric.__class__.from_config(config)
    name = spec if isinstance(spec, str) else getattr(metric, "__name__", str(spec))
    return keras.metrics.MeanMetricWrapper(metric, name=name)
