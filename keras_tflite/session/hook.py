"""TFLiteExportHook: the callback's exports for TF1 session training (`MonitoredTrainingSession`,
or a plain `tf.compat.v1.Session` loop)."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_tflite import caller, compat
from keras_tflite.board import Board, Target
from keras_tflite.callbacks import gates, options, record
from keras_tflite.callbacks.background import LatestWins
from keras_tflite.callbacks.monitor import Monitor
from keras_tflite.callbacks.pipeline import ExportPipeline, Snapshot
from keras_tflite.callbacks.store import Store
from keras_tflite.callbacks.tensorboard import ExportSummaries
from keras_tflite.callbacks.wrapup import Wrapup
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES
from keras_tflite.session.exporter import SessionExporter
from keras_tflite.session.graph_io import freeze

tf1 = tf.compat.v1


class TFLiteExportHook(tf1.train.SessionRunHook):
    """Exports the session's model to int8 TFLite as it trains, judged in TFLite Micro; keeps the
    best one that is deployable. The TF1-session twin of `TFLiteExportCallback`.

    Exports every `every_n_steps` steps or `every_n_secs` seconds, at each checkpoint save when
    `hook.listener()` is given to a `CheckpointSaverHook`, or when `hook.export(session)` is
    called (a plain session loop; call `hook.begin()` after building the graph and `hook.end()`
    after training).

    Args:
        directory: Where `best/`, export folders and `history.jsonl` go.
        representative_data: Calibration samples: an array (one input), a dict by placeholder
            name, `(x, y)` tuples or a `tf.data.Dataset`.
        validation_data: `(x, y)` to judge each export on; with targets, the int8 model's
            `tflite_val_loss` (mean squared error, or cross-entropy for integer class targets)
            and `tflite_val_mae` or `tflite_val_accuracy`. Defaults to samples of
            `representative_data`.
        inputs: Placeholders (tensors or names). Defaults to those the outputs need.
        outputs: Output tensors or names. Defaults to the graph's only output candidate.
        every_n_steps: Export every N global steps. Defaults to None.
        every_n_secs: Export every N seconds. Defaults to None.
        monitor: The logs key deciding the best export. Defaults to "tflite_val_loss" with
            validation targets, else "tflite_mae_vs_float".
        blocking: Wait for each export on the training thread. Defaults to False (exports run
            in the background, the latest snapshot wins).
        metrics: More metrics of the int8 model on the validation targets: Keras metric names
            or functions `fn(y_true, y_pred)` returning per-sample or mean values, logged as
            `tflite_val_<name>` (the function's `__name__`); `monitor` may name one (with
            `mode` for a function). Defaults to None.
        log_dir: Where TensorBoard summaries go. Defaults to the session's summary directory
            (the one folder its `SummarySaverHook` or `CheckpointSaverHook` opened after this
            hook was made, so the int8 runs sit beside the training scalars), else
            `directory/logs`.
        Other arguments: as for `TFLiteExportCallback`.

    Example:
    ```python
    hook = keras_tflite.TFLiteExportHook("exports", x_train, (x_val, y_val), outputs=[prediction])
    saver = tf.compat.v1.train.CheckpointSaverHook(
        "ckpt", save_steps=200, listeners=[hook.listener()]
    )
    with tf.compat.v1.train.MonitoredTrainingSession(hooks=[hook, saver]) as sess:
        while not sess.should_stop():
            sess.run(train_op, feed_dict=...)
    ```
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        representative_data: Any = None,
        validation_data: Any = None,
        *,
        inputs: Any = None,
        outputs: Any = None,
        every_n_steps: int | None = None,
        every_n_secs: float | None = None,
        quantization: str = "int8",
        monitor: str | None = None,
        mode: str = "auto",
        min_delta: float = 0.0,
        max_normalized_rmse: float | None = gates.DEFAULT_MAX_NORMALIZED_RMSE,
        max_error: float | None = None,
        max_model_bytes: int | None = None,
        max_arena_bytes: int | None = None,
        target: str | Target | None = None,
        kernels: str | None = None,
        max_latency_ms: float | None = None,
        save_best_only: bool = True,
        keep_last: int | None = None,
        blocking: bool = False,
        c_symbol: str = "g_model",
        num_calibration_samples: int = DEFAULT_NUM_SAMPLES,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        seed: int = 0,
        timeout: float = 600.0,
        metrics: list[str | Callable[[Any, Any], Any]] | None = None,
        log_dir: str | os.PathLike | None = None,
        verbose: int = 1,
    ):
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        given |= {"export_freq": "epoch", "every_n_epochs": 1}  # checked alike; unused here
        for name, value in options.checked(given).items():
            setattr(self, name, value)
        for name in ("every_n_steps", "every_n_secs"):
            value = given[name]
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"Expected {name} to be a positive number. Received: {value!r}.")
        self.metrics = _checked_metrics(metrics)
        # The session's summary folder is one opened after this hook was made (a process keeps
        # the writers of earlier sessions; MonitoredTrainingSession opens its own before `begin`).
        self._folders_before = _summary_folders()
        self.directory = Path(directory)
        options.check_writable(self.directory)
        timed = every_n_steps is not None or every_n_secs is not None
        self._timer = (
            tf1.train.SecondOrStepTimer(every_secs=every_n_secs, every_steps=every_n_steps)
            if timed
            else None
        )
        self._pipeline: ExportPipeline | None = None
        self._reporter = record.Reporter(self.directory / "best")
        self._steps = 0
        self._last_exported: int | None = None

    # ---- SessionRunHook ------------------------------------------------------------------------

    def begin(self) -> None:
        """Prepares every export: finds the inputs and outputs, draws and checks the samples,
        starts the worker. Raises ValueError before the first step."""
        if self._pipeline is not None:
            return
        graph = tf1.get_default_graph()
        self._global_step = tf1.train.get_global_step(graph)
        caller.remember()  # warnings from export threads point at the training script
        with compat.eager():  # the script may have turned eager execution off (TF1 style)
            self._prepare(graph)
        # Ctrl-C and exits: MonitoredTrainingSession skips `end` when training raises.
        self._wrapup = Wrapup(
            self._queue,
            self._pipeline,
            self._say_records,
            "TFLiteExportHook",
            close=functools.partial(self._close, self._pipeline),
        )
        self._wrapup.start()
        self._told_log_dir = False

    def _prepare(self, graph: Any) -> None:
        exporter = SessionExporter(
            graph,
            self.representative_data,
            self.validation_data,
            inputs=self.inputs,
            outputs=self.outputs,
            quantization=self.quantization,
            num_calibration_samples=self.num_calibration_samples,
            num_validation_samples=self.num_validation_samples,
            seed=self.seed,
            timeout=self.timeout,
            niceness=0 if self.blocking else 10,
            board=Board(self.target, self.kernels),
        )
        config = _task(graph, exporter, self.metrics)
        key = self.monitor or ("tflite_val_loss" if config else "tflite_mae_vs_float")
        monitor = Monitor(key, self.mode, self.min_delta)
        monitor.resolve(config)
        store = Store(self.directory, save_best_only=self.save_best_only, keep_last=self.keep_last)
        previous = store.best_manifest()
        if previous is not None and previous.get("monitor") == key:
            monitor.best = previous["value"]  # a resumed run only replaces a better best
        self._pipeline = ExportPipeline(
            exporter,
            monitor=monitor,
            limits=gates.Gates(
                self.max_normalized_rmse,
                self.max_error,
                self.max_model_bytes,
                self.max_arena_bytes,
                self.max_latency_ms,
            ),
            store=store,
            summaries=ExportSummaries(self.log_dir or self.directory / "logs"),
            compile_config=config,
            c_symbol=self.c_symbol,
            draw=False,
            batch_steps=True,
        )
        self._queue = LatestWins(self._process, self.timeout * 2 + 300)

    def after_create_session(self, session, coord) -> None:
        """Every hook has begun: the session's summary directory, if any, is known now."""
        if self.log_dir is None and self._pipeline is not None:
            opened = _summary_folders() - self._folders_before
            if len(opened) == 1:
                self._pipeline.summaries.log_dir = opened.pop()
        self._tell_log_dir()

    def _tell_log_dir(self) -> None:
        if self.verbose and not self._told_log_dir and self._pipeline is not None:
            where = self._pipeline.summaries.log_dir
            print(f"TFLiteExportHook: TensorBoard summaries in {where}", flush=True)
        self._told_log_dir = True

    def before_run(self, run_context):
        if self._global_step is None:
            return None
        return tf1.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context, run_values) -> None:
        self._steps += 1
        step = self._steps if self._global_step is None else int(run_values.results)
        if self._timer is not None and self._timer.should_trigger_for_step(step):
            self._timer.update_last_triggered_step(step)
            self.export(run_context.session, step)
        self._say()

    def end(self, session=None) -> None:
        """Exports the final state (when exporting on a schedule), waits for the last export
        (bounded) and stops the worker."""
        if self._pipeline is None:
            return
        if session is not None and self._timer is not None:
            step = self._current_step(session)
            if step != self._last_exported:
                self.export(session, step)
        self._wrapup.end()
        self._say()
        self._wrapup.close()

    def _close(self, pipeline: ExportPipeline) -> None:
        """Closes this run's exports (at `end`, or after a Ctrl-C): a later session begins anew."""
        _off_graph(pipeline.close)
        if self._pipeline is pipeline:
            self._pipeline = None

    # ---- exporting ----------------------------------------------------------------------------

    def export(self, session, global_step: int | None = None) -> None:
        """Exports the session's current variables: freezes them here (milliseconds), then
        converts and judges in the worker (in the background unless `blocking`)."""
        if self._pipeline is None:
            self.begin()
        self._tell_log_dir()
        step = self._current_step(session) if global_step is None else int(global_step)
        self._last_exported = step
        frozen = freeze(session, self._pipeline.exporter.outputs)
        snapshot = Snapshot(-1, step, {}, frozen, None)  # epoch 0: sessions count steps
        # On the export thread either way, eager, outside the (finalized) training graph that
        # this thread has as its default.
        self._queue.submit(snapshot)
        if self.blocking:
            self._queue.wait()
            self._say()

    def _process(self, snapshot: Snapshot) -> record.ExportRecord:
        with compat.eager():  # on the export thread, which graph mode makes build graphs too
            return self._pipeline.process(snapshot)

    def listener(self) -> tf1.train.CheckpointSaverListener:
        """A `CheckpointSaverListener` exporting after each checkpoint save."""
        return _ExportOnSave(self)

    @property
    def best(self) -> Path:
        return self.directory / "best"

    def _current_step(self, session) -> int:
        if self._global_step is None:
            return self._steps
        return int(session.run(self._global_step))

    def _say(self) -> None:
        self._say_records(self._queue.take_finished() if hasattr(self, "_queue") else [])

    def _say_records(self, records: list[record.ExportRecord]) -> None:
        for entry in records if self.verbose else []:
            self._reporter.say(entry)


def _off_graph(function) -> None:
    """Runs `function` eagerly on a thread of its own: the training thread's default graph
    (finalized, in a MonitoredTrainingSession) must not receive summary ops."""

    def run() -> None:
        with compat.eager():
            function()

    thread = threading.Thread(target=run, name="tflite-export-close")
    thread.start()
    thread.join()


class _ExportOnSave(tf1.train.CheckpointSaverListener):
    def __init__(self, hook: TFLiteExportHook):
        self._hook = hook

    def after_save(self, session, global_step_value) -> None:
        self._hook.export(session, global_step_value)


def _task(graph: Any, exporter: SessionExporter, metrics: list[Any]) -> dict[str, Any] | None:
    """The loss and metrics the int8 model is scored with, from the validation targets: integer
    class ids against a multi-class output are a classification, anything else a regression;
    then the user's `metrics`."""
    targets = exporter.validation.targets
    if not targets or len(targets) != 1 or len(exporter.outputs) != 1:
        if metrics:
            raise ValueError(
                "Expected validation_data with one target array, for one output, to compute "
                f"metrics={[_metric_name(m) for m in metrics]}. Received: "
                f"{len(targets or [])} target arrays for outputs {exporter.outputs}."
            )
        return None
    width = graph.get_tensor_by_name(f"{exporter.outputs[0]}:0").shape.as_list()[-1]
    if np.issubdtype(targets[0].dtype, np.integer) and (width or 1) > 1:
        return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy", *metrics]}
    return {"loss": "mse", "metrics": ["mae", *metrics]}


def _checked_metrics(metrics: Any) -> list[Any]:
    given = [] if metrics is None else list(metrics) if isinstance(metrics, (list, tuple)) else None
    if given is None or not all(isinstance(m, str) or callable(m) for m in given):
        raise ValueError(
            "Expected metrics to be a list of Keras metric names or functions "
            f"fn(y_true, y_pred). Received: {metrics!r}."
        )
    for metric in given:
        if isinstance(metric, str):
            import keras

            keras.metrics.get(metric)  # raises ValueError naming an unknown metric
        elif _metric_name(metric) == "<lambda>":
            raise ValueError(
                "Expected metric functions with names (def f(y_true, y_pred): ...), logged as "
                "tflite_val_<name>. Received: a lambda."
            )
    return given


def _metric_name(metric: Any) -> str:
    return metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))


def _summary_folders() -> set[str]:
    """Folders TF1 summary writers are open on in this process (`FileWriterCache` keeps one per
    folder; SummarySaverHook and CheckpointSaverHook open theirs at `begin`)."""
    return {os.fspath(folder) for folder in getattr(tf1.summary.FileWriterCache, "_cache", {})}
