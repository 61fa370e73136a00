"""When to export: each epoch (or every n), every N batches, or when the float model improves."""

from __future__ import annotations

from typing import Any

from keras_tflite.callbacks.monitor import Monitor


def check_freq(export_freq: Any) -> str | int:
    if export_freq in ("epoch", "improvement") or (
        isinstance(export_freq, int) and not isinstance(export_freq, bool) and export_freq > 0
    ):
        return export_freq
    raise ValueError(
        "Expected export_freq to be 'epoch', 'improvement' or a positive number of batches. "
        f"Received: {export_freq!r}."
    )


class Schedule:
    """Counts batches (also under `steps_per_execution`, where Keras reports every Nth batch)
    and says at each hook whether an export is due.

    Args:
        export_freq: "epoch", "improvement" or a number of batches.
        every_n_epochs: With "epoch": every this many epochs, and always after the last one.
        float_monitor: With "improvement": the float model's key to watch.
    """

    def __init__(self, export_freq: str | int, every_n_epochs: int, float_monitor: Monitor):
        self.export_freq = check_freq(export_freq)
        self.every_n_epochs = every_n_epochs
        self.float_monitor = float_monitor
        self.step = 0  # batches trained so far, across epochs
        self.missing_key: str | None = None  # the float key, when the logs lacked it
        self._last_batch, self._since_export = -1, 0

    @property
    def per_batch(self) -> bool:
        return isinstance(self.export_freq, int)

    def epoch_begin(self) -> None:
        self._last_batch = -1

    def batch_end(self, batch: int) -> bool:
        """Counts the batches since the last call; True when a batch export is due."""
        steps = batch + 1 if batch <= self._last_batch else batch - self._last_batch
        self.step += steps
        self._last_batch = batch
        if not self.per_batch:
            return False
        self._since_export += steps
        if self._since_export < self.export_freq:
            return False
        self._since_export = 0
        return True

    def epoch_end(self, epoch: int, logs: dict[str, Any], epochs: int | None, steps: int) -> bool:
        """True when an epoch export is due. `steps` is the epoch's batch count, for frameworks
        that skip batch hooks the callback does not ask for (tf_keras)."""
        if self._last_batch == -1:
            self.step += steps
        if self.export_freq == "epoch":
            last = epoch + 1 == epochs
            return (epoch + 1) % self.every_n_epochs == 0 or last
        if self.export_freq == "improvement":
            value = logs.get(self.float_monitor.key)
            if value is None:
                self.missing_key = self.float_monitor.key
                return False
            return self.float_monitor.update(float(value))
        return False
