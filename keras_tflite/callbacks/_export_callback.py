"""TFLiteExportCallback: export during model.fit, judge the int8 model, keep the best deployable."""

from __future__ import annotations

import atexit
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras

from keras_tflite import _artifacts, _plots, _worker
from keras_tflite._calibration import DEFAULT_NUM_SAMPLES
from keras_tflite._export import DEFAULT_VALIDATION_SAMPLES, Exporter, Judged
from keras_tflite._quantization import check_mode
from keras_tflite._tensorboard import (
    ExportSummaries,
    export_images,
    keras_log_dir,
    manifest_markdown,
)
from keras_tflite.callbacks import _distributed, _gates, _queue
from keras_tflite.callbacks._options import _check_freq, _check_writable, _comparison
from keras_tflite.callbacks._records import (
    _deployment_files,
    _float_counterpart,
    _line,
    _manifest,
    _now,
    _remove_tree,
)
from keras_tflite.callbacks._task_metrics import task_metrics

_MODES = ("auto", "min", "max")
# Export folders inside `directory`: epoch0003-step0000120-<time in ns>.
_EXPORT_GLOB = "epoch[0-9]*-step[0-9]*"


class TFLiteExportCallback(keras.callbacks.Callback):
    """Exports the model to TFLite while it trains, judges it, and keeps the best deployable one.

    At each export the callback snapshots the weights (milliseconds) and returns; conversion and
    judging run in a background worker process. Results join the epoch's `logs` as `tflite_*`
    keys: what the microcontroller computes, measured in TFLite Micro (the int8 model's
    `tflite_val_loss` and metrics, its error against float), with LiteRT's numbers beside them as
    `tflite_litert_*`. The best exportable model lands in `directory/best/` with a C array and a
    manifest.

    The model may be Keras 3 on any backend (JAX and torch models are rebuilt on TensorFlow to
    convert and judged against their own backend's outputs), tf_keras, or tf_keras wrapped by
    tensorflow-model-optimization: quantization-aware models convert with their learned ranges,
    pruned ones with the wrappers stripped and their sparsity in the manifest.

    Args:
        directory: Where exports, `best/` and `history.jsonl` are written.
        representative_data: Calibration data, any form `keras_tflite.convert` takes. Optional
            for a quantization-aware trained model (tfmot), which converts with learned ranges.
        validation_data: `(x, y)` data to judge each export on. Defaults to samples of
            `representative_data`, which calibration also saw (with a warning).
        quantization: Quantization mode. Defaults to "int8".
        export_freq: "epoch"; an integer number of batches; or "improvement": at the end of each
            epoch in which the float model's `float_monitor` improved, which is when a
            `ModelCheckpoint(save_best_only=True)` on the same key writes. Defaults to "epoch".
        every_n_epochs: With `export_freq="epoch"`, export every this many epochs (and always
            after the last one). Defaults to 1.
        monitor: The logs key that picks the best export. Defaults to "tflite_val_loss" (the
            int8 model's loss in TFLite Micro).
        mode: "auto", "min" or "max". Defaults to "auto".
        min_delta: Smallest change that counts as an improvement. Defaults to 0.
        initial_value_threshold: A value the first best must beat. Defaults to None.
        max_normalized_rmse: Largest `tflite_normalized_rmse_vs_float` (TFLite Micro's RMSE
            against float over the float outputs' standard deviation) an exportable model may
            have: an int8 model further from float is not a faithful copy (an error within
            one int8 output step always passes). Healthy models measured 0.012-0.069, models
            calibrated on 5 samples 0.25-0.43. None disables it. Defaults to 0.15.
        max_error: Largest `tflite_mae_vs_float` (TFLite Micro's MAE against float, in output
            units) an exportable model may have. Defaults to None.
        max_model_bytes: Flash budget: larger models are not exportable. Defaults to None.
        max_arena_bytes: RAM budget: models whose TFLite Micro arena is larger are not
            exportable. Defaults to None.
        save_best_only: Keep only the best export's files. Defaults to True.
        keep_last: With `save_best_only=False`, how many export folders to keep besides the best
            (oldest removed first). Defaults to None (all).
        float_monitor: The float model's logs key that `export_freq="improvement"` watches.
            Defaults to "val_loss".
        blocking: Convert on the training thread, so results join the same epoch's logs.
            Defaults to False.
        c_symbol: Name of the C array. Defaults to "g_model".
        num_calibration_samples: Calibration samples (not batches). Defaults to 500.
        num_validation_samples: Validation samples each export is judged on, a seeded random
            subset (each costs an invoke in LiteRT and in TFLite Micro). Defaults to 256.
        seed: Seed of the calibration and validation draws. Defaults to 0.
        strategies: Conversion strategies to try, in order. Defaults to all.
        timeout: Seconds one conversion strategy may run. Defaults to 600.
        log_dir: Where TensorBoard summaries go. Defaults to the `log_dir` of a Keras
            `TensorBoard` callback in the same fit, else `directory/logs`.
        images: Draw TensorBoard images (float vs int8 predictions, or the int8 confusion matrix
            for classifiers). Needs matplotlib (`pip install "keras-tflite[plots]"`).
            Defaults to True.
        layer_errors: Measure each layer's int8 error with TFLite's QuantizationDebugger (in the
            worker; adds a conversion's time to each export) and show the worst layers of each new
            best in TensorBoard (text table and scalars) and its manifest. Defaults to False.
        verbose: 1 prints one line per export. Defaults to 1.
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
        max_normalized_rmse: float | None = _gates.DEFAULT_MAX_NORMALIZED_RMSE,
        max_error: float | None = None,
        max_model_bytes: int | None = None,
        max_arena_bytes: int | None = None,
        save_best_only: bool = True,
        keep_last: int | None = None,
        float_monitor: str = "val_loss",
        blocking: bool = False,
        c_symbol: str = "g_model",
        num_calibration_samples: int = DEFAULT_NUM_SAMPLES,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        seed: int = 0,
        strategies: list[str] | None = None,
        timeout: float = 600.0,
        log_dir: str | os.PathLike | None = None,
        images: bool = True,
        layer_errors: bool = False,
        verbose: int = 1,
    ):
        super().__init__()
        self.directory = Path(directory)
        self.representative_data, self.validation_data = representative_data, validation_data
        self.quantization = check_mode(quantization)
        self.export_freq = _check_freq(export_freq)
        if (
            not isinstance(every_n_epochs, int)
            or isinstance(every_n_epochs, bool)
            or every_n_epochs < 1
        ):
            raise ValueError(
                f"Expected every_n_epochs to be a positive integer. Received: {every_n_epochs!r}."
            )
        self.every_n_epochs = every_n_epochs
        if mode not in _MODES:
            raise ValueError(f"Expected mode to be one of {_MODES}. Received: mode={mode!r}.")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.initial_value_threshold, self.max_error = initial_value_threshold, max_error
        self.max_normalized_rmse = max_normalized_rmse
        self.max_model_bytes, self.max_arena_bytes = max_model_bytes, max_arena_bytes
        self._gates = _gates.Gates(max_normalized_rmse, max_error, max_model_bytes, max_arena_bytes)
        self.save_best_only, self.blocking, self.verbose = save_best_only, blocking, verbose
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise ValueError(
                f"Expected keep_last to be None or a positive integer. Received: {keep_last!r}."
            )
        self.keep_last, self.float_monitor = keep_last, float_monitor
        self._float_better = _comparison("auto", float_monitor)
        self._float_best: float | None = None
        self._warned_monitor = False
        self.c_symbol, self.num_calibration_samples = c_symbol, num_calibration_samples
        self.num_validation_samples = num_validation_samples
        self.seed, self.timeout, self.strategies = seed, timeout, strategies
        self.log_dir, self.images, self.layer_errors = log_dir, images, layer_errors
        _artifacts.c_array(b"", c_symbol)  # validates the symbol now, not after training
        if _distributed.chief_before_training():  # other workers never write to `directory`
            _check_writable(self.directory)
        self.best: float | None = initial_value_threshold
        self._blocking_records: list[dict[str, Any]] = []
        self._said: set[str] = set()  # kinds of notes already printed
        self._last_batch_seen, self._batches_since_export, self._step = -1, 0, 0

    # ---- Keras hooks --------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._role = _distributed.role(self.model)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflite-prepare")
        self._queue = _queue.LatestWins(self._process_safely)
        weights = self.model.get_weights() if self._role.multi_worker else None  # on every worker
        error = None
        if self._role.writer:
            log_dir = self.log_dir or keras_log_dir(self) or self.directory / "logs"
            try:
                self._off_scope(self._prepare, log_dir, weights)
            except Exception as raised:  # noqa: BLE001 - re-raised below, on every worker
                error = raised
        if self._role.multi_worker:  # all learn whether the chief could prepare, and stop alike
            prepared = _distributed.share(self._role, {"prepared": float(error is None)})
            if error is None and not prepared.get("prepared"):
                error = RuntimeError(
                    "TFLiteExportCallback could not prepare exports on the chief worker; its "
                    "log has the reason."
                )
        if error is not None:
            self._executor.shutdown(wait=False)
            raise error
        if self._role.writer:  # an interrupted fit never reaches on_train_end
            atexit.register(self._finish_at_exit)

    def _off_scope(self, function, *args):
        """Runs `function` outside `fit`'s strategy scope or JAX distribution (both per thread):
        under them, a variable it created would be a collective only the chief joins."""
        if self._role.strategy is None and not self._role.multi_worker:
            return function(*args)
        return self._executor.submit(function, *args).result()

    def _prepare(self, log_dir, weights) -> None:
        model = self.model if weights is None else _distributed.local_copy(self.model, weights)
        self._exporter = Exporter(
            model,
            self.representative_data,
            self.validation_data,
            quantization=self.quantization,
            batch_size=1,
            num_calibration_samples=self.num_calibration_samples,
            seed=self.seed,
            strategies=self.strategies,
            timeout=self.timeout,
            # Background exports run at low CPU priority: training keeps the cores it needs.
            niceness=0 if self.blocking else 10,
            num_validation_samples=self.num_validation_samples,
            layer_errors=self.layer_errors,
            owns_model=weights is not None,
        )
        if self.validation_data is None:
            import warnings

            warnings.warn(
                "TFLiteExportCallback got no validation_data: judging exports on "
                f"{len(next(iter(self._exporter.validation.inputs.values())))} samples drawn from "
                "representative_data, which the calibration also saw.",
                stacklevel=2,
            )
        self._better = _comparison(self.mode, self.monitor)
        previous = _artifacts.read_manifest(self.directory / "best")
        if previous is not None and previous.get("monitor") == self.monitor:
            self.best = previous["value"]
        self._summaries = ExportSummaries(log_dir)
        self._draw = self.images and _plots.available()
        if self.images and not self._draw:
            import warnings

            warnings.warn(
                "matplotlib is not installed, so TensorBoard images are skipped: "
                'pip install "keras-tflite[plots]" (or images=False to silence this).',
                stacklevel=2,
            )

    def on_train_batch_end(self, batch, logs=None):
        # Under steps_per_execution Keras reports every Nth batch: count the batches in between.
        steps = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._step += steps
        self._last_batch_seen = batch
        if not isinstance(self.export_freq, int):
            return
        self._batches_since_export += steps
        if self._batches_since_export >= self.export_freq:
            self._batches_since_export = 0
            self._export(self._epoch, dict(logs or {}))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._last_batch_seen = epoch, -1

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        if self._last_batch_seen == -1:  # tf_keras skips batch hooks a callback does not need
            self._step += self.params.get("steps") or 0
        last = epoch + 1 == self.params.get("epochs")
        due = (epoch + 1) % self.every_n_epochs == 0 or last
        if (self.export_freq == "epoch" and due) or (
            self.export_freq == "improvement" and self._float_improved(logs)
        ):
            self._export(epoch, dict(logs))
        self._report_into(logs, share=True)

    def _float_improved(self, logs: dict[str, Any]) -> bool:
        value = logs.get(self.float_monitor)
        if value is None:
            self._warn_missing(self.float_monitor, logs)
            return False
        if self._float_best is None or self._float_better(float(value), self._float_best, 0.0):
            self._float_best = float(value)
            return True
        return False

    def _warn_missing(self, key: str, logs: dict[str, Any]) -> None:
        if self._warned_monitor:
            return
        self._warned_monitor = True
        import warnings

        warnings.warn(
            f"TFLiteExportCallback is watching '{key}', which is not in the logs. "
            f"Available keys: {sorted(logs)}.",
            stacklevel=3,
        )

    # tf_keras' CallbackList asks these of every callback (Keras 3's does not).
    _supports_tf_logs = False

    def _implements_train_batch_hooks(self) -> bool:
        return isinstance(self.export_freq, int)

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    def on_train_end(self, logs=None):
        self._executor.shutdown(wait=True)
        if not self._role.writer:
            return
        atexit.unregister(self._finish_at_exit)
        if not self._queue.wait(self._final_wait):
            _worker.kill_running()
            import warnings

            warnings.warn(
                f"TFLiteExportCallback stopped waiting for its last export after "
                f"{self._final_wait:g} s and stopped its worker.",
                stacklevel=2,
            )
        self._report_into(logs if logs is not None else {})
        self._close()

    @property
    def _final_wait(self) -> float:
        return self.timeout * 4 + 300  # every strategy may run to its timeout

    def _close(self) -> None:
        self._exporter.close()
        self._summaries.close()

    def _finish_at_exit(self) -> None:
        """At interpreter exit after an interrupted fit: finish the running export, or abandon it
        at a second Ctrl-C; either way no worker outlives this process."""
        try:
            if self._queue.busy:
                epoch = (self._queue.current or {}).get("epoch", -1) + 1
                print(
                    f"TFLiteExportCallback: finishing the export of epoch {epoch} before exiting "
                    "(Ctrl-C again to abandon it)...",
                    flush=True,
                )
                self._queue.wait(self._final_wait)
            self._report_into({})
        except KeyboardInterrupt:
            print("TFLiteExportCallback: export abandoned; the best model so far is kept.")
        finally:
            _worker.kill_running()
            self._close()

    # ---- exporting ----------------------------------------------------------------------------

    def _export(self, epoch: int, logs: dict[str, Any]) -> None:
        weights = self.model.get_weights()  # on every worker: reads may be collectives
        if not self._role.writer:
            return
        snapshot = {
            "epoch": epoch,
            "step": self._step,
            "logs": logs,
            "weights": weights,
            # On JAX or torch, the float outputs to judge against; across processes the
            # exporter computes them on its own copy (a prediction there is a collective).
            "reference": None if self._role.multi_worker else self._float_reference(),
        }
        if self.blocking:
            snapshot["skipped_epochs"] = []
            self._blocking_records.append(self._off_scope(self._process_safely, snapshot))
            return
        self._queue.submit(snapshot)  # a newer snapshot replaces one still waiting: latest wins

    def _float_reference(self):
        try:
            return self._exporter.float_reference(self.model)
        except Exception as error:  # noqa: BLE001 - judged against the TensorFlow rebuild instead
            import warnings

            warnings.warn(
                f"TFLiteExportCallback could not compute the float reference on this backend "
                f"({type(error).__name__}: {error}); judging against the TensorFlow rebuild.",
                stacklevel=2,
            )
            return None

    def _process_safely(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """`_process`, with any failure (a full disk, say) recorded instead of raised into fit."""
        try:
            return self._process(snapshot)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            record = {
                "epoch": snapshot["epoch"] + 1,
                "step": snapshot["step"],
                "time": _now(),
                "exportable": False,
                "reason": f"{type(error).__name__}: {error}",
                "monitor": self.monitor,
                "value": None,
                "new_best": False,
                "metrics": {},
            }
            try:
                _artifacts.append_line(self.directory / "history.jsonl", record)
            except OSError:
                pass
            return record | {"logs": {}}

    def _process(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        judged = self._exporter.export(snapshot["weights"], snapshot["reference"])
        logs = self._tflite_logs(judged)
        merged = {**snapshot["logs"], **logs}
        reason = _gates.refusal(judged, logs, self._gates, self._exporter.calibration.shortfall)
        value = merged.get(self.monitor)
        if value is None and reason is None:
            self._warn_missing(self.monitor, merged)
        improved = reason is None and value is not None and self._improves(float(value))
        record = {
            "epoch": snapshot["epoch"] + 1,
            "step": snapshot["step"],
            "time": _now(),
            "exportable": reason is None,
            "reason": reason,
            "monitor": self.monitor,
            "value": None if value is None else float(value),
            "new_best": improved,
            "metrics": logs,
            "seconds": judged.seconds,
            "float_value": _float_counterpart(self.monitor, snapshot["logs"]),
            "closer_to_float": _gates.closer_to_float(logs)
            if "tflite_mae_vs_float" in logs
            else None,
            "skipped_epochs": snapshot["skipped_epochs"],
        }
        notes = _gates.notes(judged, logs)
        record["warnings"] = list(notes.values())
        if judged.result is not None and (improved or not self.save_best_only):
            record["path"] = str(self._write(judged, record, best=improved))
        if improved:
            self.best = float(value)
        if judged.result is not None:
            self._summarize(snapshot, judged, logs, record, improved)
        _artifacts.append_line(self.directory / "history.jsonl", record)
        return record | {"logs": logs, "note_kinds": notes}

    def _summarize(self, snapshot, judged: Judged, logs, record, improved: bool) -> None:
        try:
            markdown = manifest_markdown(_manifest(judged, record, self)) if improved else None
            targets = self._exporter.validation.targets
            images = export_images(judged, targets) if self._draw else None
            convert = next(a.seconds for a in judged.result.attempts if a.status == "converted")
            self._summaries.write(
                snapshot["epoch"],
                logs,
                judged.micro_outputs or judged.litert_outputs,
                judged.float_outputs,
                judged.seconds,
                judged.result.num_calibration_samples,
                markdown,
                images,
                convert_seconds=convert,
                layer_errors=judged.layer_errors if improved else None,
            )
        except Exception as error:  # noqa: BLE001 - a chart is never worth an export
            import warnings

            warnings.warn(
                f"TFLiteExportCallback could not write TensorBoard summaries: {error}", stacklevel=2
            )

    def _tflite_logs(self, judged: Judged) -> dict[str, float]:
        """`tflite_*`: TFLite Micro's (the device's) numbers; `tflite_litert_*`: LiteRT's."""
        if judged.result is None:
            return {}
        logs = {f"tflite_{k}": v for k, v in judged.metrics.items()}
        targets = self._exporter.validation.targets
        # `_model`, not `model`: on JAX the property syncs training state, which only the
        # training thread may do; the compile config is all that is read here.
        runs = {"tflite_val_": judged.micro_outputs, "tflite_litert_val_": judged.litert_outputs}
        for prefix, outputs in runs.items():
            if outputs:
                for name, value in task_metrics(self._model, targets, outputs).items():
                    logs[f"{prefix}{name}"] = value
        return logs

    def _improves(self, value: float) -> bool:
        return self.best is None or self._better(value, self.best, self.min_delta)

    def _write(self, judged: Judged, record: dict[str, Any], *, best: bool) -> Path:
        name = f"epoch{record['epoch']:04d}-step{record['step']:07d}-{time.time_ns()}"
        target = self.directory / name
        _artifacts.write_model_set(
            target,
            judged.result.tflite,
            _manifest(judged, record, self),
            c_symbol=self.c_symbol,
            extra_files=_deployment_files(judged, record, self.c_symbol),
        )
        if best:
            link = self.directory / "best"
            previous = link.resolve() if link.is_symlink() else None
            _artifacts.point_link(link, target)
            if self.save_best_only and previous is not None and previous != target.resolve():
                self._remove_export(previous, "replaced by a better best (save_best_only)")
        if not self.save_best_only and self.keep_last is not None:
            self._prune()
        return target

    def _prune(self) -> None:
        """Keeps the newest `keep_last` export folders besides the best one."""
        best = self.directory / "best"
        kept = best.resolve() if best.is_symlink() else None
        folders = sorted(
            (p for p in self.directory.glob(_EXPORT_GLOB) if p.is_dir()),
            key=lambda p: p.name.rsplit("-", 1)[-1],  # creation time: runs may resume at epoch 1
        )
        others = [p for p in folders if p.resolve() != kept]
        for folder in others[: max(0, len(others) - self.keep_last)]:
            self._remove_export(folder, f"keep_last={self.keep_last}")

    def _remove_export(self, folder: Path, why: str) -> None:
        """Removes an export folder; history.jsonl stops pointing at it and says why."""
        _remove_tree(folder)
        _artifacts.mark_removed(self.directory / "history.jsonl", str(folder), why)

    # ---- reporting ----------------------------------------------------------------------------

    def _report_into(self, logs: dict[str, Any], share: bool = False) -> None:
        """Adds the newest finished export's `tflite_*` logs; with `share`, on every worker (all
        of them call this at each epoch end under a multi-worker strategy)."""
        finished = []
        if self._role.writer:
            finished, self._blocking_records = self._blocking_records, []
            finished += self._queue.take_finished()
        for record in finished:
            if self.verbose:
                self._say(record)
        newest = finished[-1]["logs"] if finished else {}
        logs.update(_distributed.share(self._role, newest) if share else newest)

    def _say(self, record: dict[str, Any]) -> None:
        """The export's line, then each kind of note the first time it appears."""
        print(_line(record, self.directory), flush=True)
        skipped = record.get("skipped_epochs")
        if skipped and "skipped" not in self._said:
            self._said.add("skipped")
            print(
                "  note: epochs finished while an export was still running are not exported "
                "(latest wins); every_n_epochs=N spaces exports out, blocking=True exports "
                "every one.",
                flush=True,
            )
        for kind, text in record.get("note_kinds", {}).items():
            if kind not in self._said:
                self._said.add(kind)
                print(f"  note: {text}", flush=True)
