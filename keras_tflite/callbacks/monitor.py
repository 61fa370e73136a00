"""A watched logs key and its direction: which values are better, and the best so far.

`mode="auto"` takes the direction from the metric, as Keras' `MonitorCallback` does: losses go
down, a compiled metric goes the way its Keras 3 class says (`_direction`: accuracy, AUC,
precision, recall, IoU, F1 and R² up; errors down), and the int8 fidelity keys go the way their
meaning says. A key whose direction cannot be told raises, asking for `mode`.
"""

from __future__ import annotations

from typing import Any

MODES = ("auto", "min", "max")

# The fidelity keys `tflite_<name>_vs_float` (and `tflite_litert_...`), by name.
_FIDELITY = {
    "mae": "min",
    "rmse": "min",
    "normalized_rmse": "min",
    "max_abs_error": "min",
    "cosine_similarity": "max",
    "snr_db": "max",
    "top1_agreement": "max",
}
_SIZES = (
    "tflite_model_bytes",
    "tflite_arena_bytes",
    "tflite_arena_bytes_reference",
    "tflite_arena_bytes_cmsis_nn",
    "tflite_instructions",
    "tflite_latency_ms",
    "tflite_invoke_seconds",
    "tflite_rebuild_max_abs_diff",
)


def check_mode(mode: Any, argument: str = "mode") -> str:
    if mode not in MODES:
        raise ValueError(
            f"Expected {argument} to be one of {MODES}. Received: {argument}={mode!r}."
        )
    return mode


def direction(key: str, compile_config: dict[str, Any] | None) -> str:
    """ "min" or "max" for the logs key `key` of a model compiled with `compile_config`.

    Raises:
        ValueError: when the direction cannot be told from the key or the model's metrics.
    """
    key = key.replace("tflite_stream_", "tflite_")  # the streaming model's keys go alike
    if key in _SIZES or key == "tflite_litert_max_lsb_vs_micro":
        return "min"
    if key.startswith("tflite_") and key.endswith("_vs_float"):
        name = key.removeprefix("tflite_").removeprefix("litert_").removesuffix("_vs_float")
        if name in _FIDELITY:
            return _FIDELITY[name]
    metric = key
    for prefix in ("tflite_litert_val_", "tflite_val_", "val_"):
        if key.startswith(prefix):
            metric = key.removeprefix(prefix)
            break
    if metric == "loss" or metric.endswith("_loss"):
        return "min"
    found = _compiled_direction(metric, compile_config)
    if found is not None:
        return found
    raise ValueError(
        f"Expected a monitored key whose direction can be told from its metric. Received: "
        f"{key!r}, and the model's compiled metrics do not say whether it should be maximized "
        "or minimized. Pass mode='max' to keep the highest value, or mode='min' for the lowest."
    )


def _compiled_direction(name: str, compile_config: dict[str, Any] | None) -> str | None:
    """The direction of the compiled metric logged as `name`, from its Keras 3 class."""
    from keras_tflite.callbacks.task_metrics import compiled_metrics

    for metric in compiled_metrics(compile_config):
        if metric.name == name:
            going = getattr(metric, "_direction", None)
            return {"up": "max", "down": "min"}.get(going)
    return None


class Monitor:
    """The best value of one logs key so far, and whether a new value improves on it."""

    def __init__(self, key: str, mode: str = "auto", min_delta: float = 0.0, best=None):
        self.key, self.mode = key, check_mode(mode)
        self.min_delta, self.best = abs(min_delta), best
        self._direction = None if mode == "auto" else mode

    def resolve(self, compile_config: dict[str, Any] | None) -> None:
        """Settles "auto" now, before training (raises when it cannot)."""
        if self._direction is None:
            self._direction = direction(self.key, compile_config)

    def improves(self, value: float) -> bool:
        if self.best is None:
            return True
        if self._direction == "max":
            return value - self.min_delta > self.best
        return value + self.min_delta < self.best

    def update(self, value: float) -> bool:
        """Records `value` when it improves; returns whether it did."""
        if not self.improves(value):
            return False
        self.best = value
        return True
