"""TFLiteExportCallback: export during model.fit, judge the int8 model, keep the best deployable."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras

from keras_tflite import caller
from keras_tflite.board import Target
from keras_tflite.callbacks import distributed, gates, options, pipeline, record
from keras_tflite.callbacks.background import LatestWins
from keras_tflite.callbacks.monitor import Monitor
from keras_tflite.callbacks.schedule import Schedule
from keras_tflite.callbacks.task_metrics import compile_config
from keras_tflite.callbacks.tensorboard import summary_dir
from keras_tflite.callbacks.wrapup import Wrapup
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES


class TFLiteExportCallback(keras.callbacks.Callback):
    """Exports the model to TFLite while it trains, judges it, and keeps the best deployable one.

    At each export the callback snapshots the weights (milliseconds) and returns; conversion and
    judging run in a background worker process. The main results, measured in TFLite Micro (what
    the microcontroller computes: `tflite_val_loss`, the compiled metrics, the error against
    float, flash, arena) join `logs`; TensorBoard and `history.jsonl` have all `tflite_*` keys.
    The best exportable model lands in `directory/best/` with a C array, firmware files and a
    manifest. Keras 3 (any backend), tf_keras and tfmot (QAT, pruning) models are accepted.

    Args:
        directory: Where export folders, `best/` and `history.jsonl` are written.
        representative_data: Calibration data, any form `keras_tflite.convert` takes. Optional
            for a quantization-aware trained model, which converts with learned ranges.
        validation_data: `(x, y)` data to judge each export on. Defaults to samples of
            `representative_data`, which calibration also saw (with a warning).
        quantization: Quantization mode. Defaults to "int8".
        export_freq: "epoch"; a number of batches; or "improvement": after each epoch in which
            `float_monitor` improved. Defaults to "epoch".
        every_n_epochs: Export every this many epochs (and after the last). Defaults to 1.
        monitor: The logs key that picks the best export. Defaults to "tflite_val_loss".
        mode: "auto" (the direction the metric has: losses and errors down, accuracy-like
            metrics up), "min" or "max". Defaults to "auto".
        min_delta: Smallest change that counts as an improvement. Defaults to 0.
        initial_value_threshold: A value the first best must beat. Defaults to None.
        max_normalized_rmse: Largest `tflite_normalized_rmse_vs_float` (RMSE over the float
            outputs' spread, TFLite Micro) an exportable model may have. Defaults to 0.15.
        max_error: Largest `tflite_mae_vs_float` an exportable model may have. Defaults to None.
        max_model_bytes: Flash budget for the model. Defaults to the target's flash, else None.
        max_arena_bytes: RAM budget for the tensor arena (of `kernels`, else the larger of
            reference and CMSIS-NN, on a 32-bit Cortex-M). Defaults to the target's RAM.
        target: A board from `keras_tflite.TARGETS` by name, or a `keras_tflite.Target`: its
            flash and RAM, and an estimated `tflite_latency_ms` on its core. Defaults to None.
        kernels: The kernel set the firmware builds: "reference" or "cmsis_nn". Defaults to
            None (an arena that fits either; instructions estimated for CMSIS-NN).
        max_latency_ms: Largest estimated `tflite_latency_ms` on `target`. Defaults to None.
        save_best_only: Keep only the best export's files. Defaults to True.
        keep_last: With `save_best_only=False`, folders kept besides the best (None: all).
        float_monitor: The key `export_freq="improvement"` watches. Defaults to "val_loss".
        blocking: Export on the training thread: results join that epoch's logs. Defaults to
            False.
        c_symbol: Name of the C array. Defaults to "g_model".
        num_calibration_samples: Calibration samples (not batches), or "auto". Defaults to 500.
        num_validation_samples: Validation samples each export is judged on: the whole set
            when it holds no more, else a seeded draw of this many (stated beside the figures).
            Defaults to 1024.
        seed: Seed of the calibration and validation draws. Defaults to 0.
        strategies: Conversion strategies to try, in order. Defaults to all.
        timeout: Seconds one conversion strategy may run. Defaults to 600.
        log_dir: Where TensorBoard summaries go. Defaults to `tensorboard`'s log_dir.
        tensorboard: The Keras `TensorBoard` callback whose runs the int8 curves join. Defaults
            to the fit's, if any (else summaries go to `directory/logs`).
        images: Draw prediction or confusion-matrix images (matplotlib). Defaults to True.
        layer_errors: Measure each layer's int8 error (QuantizationDebugger) and show the worst
            layers of each new best. Defaults to False.
        streaming: Also export a recurrent model's one-step form, judged by stepping through
            the sequences (`tflite_stream_*` keys, `best/stream/`). Defaults to False.
        all_logs: Put every `tflite_*` figure into `logs` (and so the progress bar), not only
            the monitored key, the compiled metrics in TFLite Micro, the error against float,
            flash, arena and latency. TensorBoard, `history.jsonl` and the manifest have them
            all either way. Defaults to False.
        verbose: 1 prints one line per export. Defaults to 1.

    Example:
    ```python
    callback = keras_tflite.TFLiteExportCallback("exports", x_train, (x_val, y_val))
    model.fit(x_train, y_train, epochs=10, callbacks=[callback])
    # exports/best/: model.tflite, model_data.h/.cc, model_ops.h, model.ino, manifest.json
    ```
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        representative_data: Any = None,
        validation_data: Any = None,
        *,
        quantization: str = "int8",
        export_freq: str | int = "epoch",
        every_n_epochs: int = 1,
        monitor: str = "tflite_val_loss",
        mode: str = "auto",
        min_delta: float = 0.0,
        initial_value_threshold: float | None = None,
        max_normalized_rmse: float | None = gates.DEFAULT_MAX_NORMALIZED_RMSE,
        max_error: float | None = None,
        max_model_bytes: int | None = None,
        max_arena_bytes: int | None = None,
        target: str | Target | None = None,
        kernels: str | None = None,
        max_latency_ms: float | None = None,
        save_best_only: bool = True,
        keep_last: int | None = None,
        float_monitor: str = "val_loss",
        blocking: bool = False,
        c_symbol: str = "g_model",
        num_calibration_samples: int | str = DEFAULT_NUM_SAMPLES,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        seed: int = 0,
        strategies: list[str] | None = None,
        timeout: float = 600.0,
        log_dir: str | os.PathLike | None = None,
        tensorboard: keras.callbacks.Callback | None = None,
        images: bool = True,
        layer_errors: bool = False,
        streaming: bool = False,
        all_logs: bool = False,
        verbose: int = 1,
    ):
        super().__init__()
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        for name, value in options.checked(given).items():
            setattr(self, name, value)  # the arguments, checked, as public attributes
        self.directory = Path(directory)
        if distributed.chief_before_training():  # other workers never write to `directory`
            options.check_writable(self.directory)
        self._schedule = Schedule(export_freq, every_n_epochs, Monitor(float_monitor))
        self._unsaid: list[record.ExportRecord] = []  # finished, not printed yet
        self._reporter = record.Reporter(self.directory / "best")
        self._epoch = 0

    # ---- Keras hooks --------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        caller.remember()  # warnings from export threads point at the `fit` call
        self._role = distributed.role(self.model)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflite-prepare")
        patience = self.timeout * 4 + 300  # the last export may run every strategy to its timeout
        self._queue = LatestWins(lambda snapshot: self._pipeline.process(snapshot), patience)
        weights = self.model.get_weights() if self._role.multi_worker else None  # on every worker
        error = None
        if self._role.writer:
            try:
                # On `fit`'s thread, whose frames hold the callbacks (a TensorBoard among them).
                log_dir = summary_dir(self, self.log_dir, self.tensorboard, self.verbose)
                distributed.off_scope(self._role, self._executor, self._prepare, weights, log_dir)
            except Exception as raised:  # noqa: BLE001 - re-raised below, on every worker
                error = raised
        error = distributed.agree_prepared(self._role, error)  # every worker stops alike
        if error is not None:
            self._executor.shutdown(wait=False)
            raise error
        if self._role.writer:  # Ctrl-C and exits: an interrupted fit never reaches on_train_end
            self._wrapup = Wrapup(self._queue, self._pipeline, self._say, "TFLiteExportCallback")
            self._wrapup.start()

    def _prepare(self, weights, log_dir: str) -> None:
        model = self.model if weights is None else distributed.local_copy(self.model, weights)
        config = compile_config(self._model)  # the live model's (a local copy is not compiled)
        self._schedule.float_monitor.resolve(config)
        self._pipeline = pipeline.build(
            self, model, log_dir, config, owns_model=weights is not None
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._schedule.epoch_begin()
        self._say([])  # the last epoch's results, now that Keras' progress bar ended its line

    def on_train_batch_end(self, batch, logs=None):
        if self._schedule.batch_end(batch):
            self._export(self._epoch, dict(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        steps = self.params.get("steps") or 0
        if self._schedule.epoch_end(epoch, logs, self.params.get("epochs"), steps):
            self._export(epoch, dict(logs))
        if self._schedule.missing_key:
            self._reporter.warn_missing(self._schedule.missing_key, logs)
        self._report_into(logs, share=True)

    # tf_keras' CallbackList asks these of every callback (Keras 3's does not).
    _supports_tf_logs = False

    def _implements_train_batch_hooks(self) -> bool:
        return self._schedule.per_batch

    def _implements_test_batch_hooks(self) -> bool:
        return False  # nor predict batch hooks (below)

    _implements_predict_batch_hooks = _implements_test_batch_hooks

    def on_train_end(self, logs=None):
        self._executor.shutdown(wait=True)
        if not self._role.writer:
            return
        self._wrapup.end()
        self._report_into(logs if logs is not None else {})
        self._say([])
        self._wrapup.close()

    # ---- exporting and reporting --------------------------------------------------------------

    def _export(self, epoch: int, logs: dict[str, Any]) -> None:
        weights = self.model.get_weights()  # on every worker: reads may be collectives
        if not self._role.writer:
            return
        # On JAX or torch, the float outputs to judge against; across processes the exporter
        # computes them on its own copy (a prediction there is a collective).
        reference = None if self._role.multi_worker else self._pipeline.reference(self.model)
        snapshot = pipeline.Snapshot(epoch, self._schedule.step, logs, weights, reference)
        self._queue.submit(snapshot)  # a newer snapshot replaces one still waiting
        if self.blocking:
            self._queue.wait()  # interruptible: at a Ctrl-C, the export finishes in the background

    def _report_into(self, logs: dict[str, Any], share: bool = False) -> None:
        """Adds the newest finished export's `tflite_*` logs (the main ones, or all with
        `all_logs`); with `share`, on every worker (all of them call this at each epoch end
        under a multi-worker strategy). Their lines are printed at the next epoch's begin."""
        finished: list[record.ExportRecord] = []
        if self._role.writer:
            finished = self._queue.take_finished()
            if finished and self._pipeline.missing_monitor:
                self._reporter.warn_missing(self.monitor, {**logs, **finished[-1].metrics})
        self._unsaid += finished
        newest = finished[-1].metrics if finished else {}
        if not self.all_logs:
            newest = record.progress_logs(newest, self.monitor)
        logs.update(distributed.share(self._role, newest) if share else newest)

    def _say(self, records: list[record.ExportRecord]) -> None:
        """Prints the lines held back until Keras' progress bar ended its line, then `records`."""
        held, self._unsaid = self._unsaid + list(records), []
        for entry in held if self.verbose else []:
            self._reporter.say(entry)
