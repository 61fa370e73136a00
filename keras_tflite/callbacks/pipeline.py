"""One export, from a weights snapshot to a record: convert and judge in the worker, score,
gate, keep, and summarize for TensorBoard. Runs off the training thread."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite import caller
from keras_tflite.board import Board
from keras_tflite.callbacks import gates, record
from keras_tflite.callbacks.monitor import Monitor
from keras_tflite.callbacks.record import ExportRecord
from keras_tflite.callbacks.store import Store
from keras_tflite.callbacks.task_metrics import task_metrics
from keras_tflite.callbacks.tensorboard import ExportSummaries, export_images, manifest_markdown
from keras_tflite.deploy import artifacts
from keras_tflite.exporter import Exporter, Judged


@dataclasses.dataclass
class Snapshot:
    """What the training thread hands over at an export: milliseconds of its time."""

    epoch: int  # 0-based, as Keras counts
    step: int  # batches trained so far
    logs: dict[str, Any]  # the float model's logs at that point
    weights: list[np.ndarray]
    reference: list[np.ndarray] | None  # the float outputs, for models not on TensorFlow
    skipped_epochs: list[int] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        """What records count: the 1-based epoch, or the step of a session (no epochs)."""
        return self.epoch + 1 if self.epoch >= 0 else self.step


class ExportPipeline:
    """Everything an export needs, prepared at train begin; `process` turns a snapshot into a
    record, writing the kept files and the summaries on the way."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        monitor: Monitor,
        limits: gates.Gates,
        store: Store,
        summaries: ExportSummaries,
        compile_config: dict[str, Any] | None,
        c_symbol: str,
        draw: bool,
        batch_steps: bool,
    ):
        self.exporter, self.monitor, self.limits, self.store = exporter, monitor, limits, store
        self.summaries, self.compile_config = summaries, compile_config
        self.c_symbol, self.draw, self.batch_steps = c_symbol, draw, batch_steps
        self.missing_monitor = False  # the monitored key never appeared in an export's logs
        self.abandoned: str | None = None  # why the export under way was stopped (`cancel`)

    def process(self, snapshot: Snapshot) -> ExportRecord:
        """The export's record; any failure (a full disk, say) is recorded, never raised."""
        best = self.monitor.best
        try:
            return self._process(snapshot)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            self.monitor.best = best  # an export that was not written is not the best
            if self.abandoned:
                return self.abandon(snapshot)
            reason, notes = f"{type(error).__name__}: {error}", {}
            if artifacts.disk_full(error):
                reason = self.store.disk_full_reason(error, "this export's files")
                notes = {record.DISK_FULL: reason}
            return self._unexported(snapshot, reason, notes=notes)

    def cancel(self, why: str) -> None:
        """Stops the export under way (its worker is killed and starts no other job): it is
        recorded as abandoned, `why`, never as a crash; so is any later one."""
        self.abandoned = why
        self.exporter.worker.cancel(why)

    def abandon(self, snapshot: Snapshot) -> ExportRecord:
        """Records `snapshot`'s export as abandoned (`cancel`)."""
        reason = f"abandoned: {self.abandoned or 'stopped before it finished'}"
        return self._unexported(snapshot, reason, abandoned=True)

    def _unexported(self, snapshot: Snapshot, reason: str, **fields: Any) -> ExportRecord:
        """The record of an export that produced nothing, in history.jsonl when it fits."""
        entry = ExportRecord(
            epoch=snapshot.epoch + 1,
            step=snapshot.step,
            exportable=False,
            reason=reason,
            monitor=self.monitor.key,
            skipped_epochs=snapshot.skipped_epochs,
            **fields,
        )
        try:
            self._append(entry)
        except OSError:
            pass
        return entry

    def _process(self, snapshot: Snapshot) -> ExportRecord:
        judged = self.exporter.export(snapshot.weights, snapshot.reference)
        if self.abandoned:  # its worker was killed: what came back is not the model's doing
            return self.abandon(snapshot)
        logs, reason, value = self._verdict(snapshot, judged)
        if self._improves(judged, reason, value) and judged.result.path == "requantized":
            # A new best is what gets deployed: checked against its full conversion first.
            checked = self.exporter.verify(snapshot.weights, judged, snapshot.reference)
            if self.abandoned:  # stopped while checking: not kept unchecked
                return self.abandon(snapshot)
            if checked is not judged:
                checked.stream, judged = judged.stream, checked
                logs, reason, value = self._verdict(snapshot, judged)
        if value is None and reason is None:
            self.missing_monitor = True
        float_logs = self.float_logs(judged)
        notes = gates.notes(judged, logs)
        if judged.result is not None and judged.result.full_conversion_note:
            notes["full_conversion"] = (
                "converted in full instead of re-quantizing the fit's first conversion: "
                + judged.result.full_conversion_note
            )
        stream = self._stream_verdict(judged)
        if stream and stream.get("not_kept"):
            notes["stream"] = f"the streaming model is not kept: {stream['not_kept']}"
        entry = ExportRecord(
            epoch=snapshot.epoch + 1,
            step=snapshot.step,
            exportable=reason is None,
            reason=reason,
            monitor=self.monitor.key,
            value=None if value is None else float(value),
            new_best=reason is None and value is not None and self.monitor.update(float(value)),
            metrics=logs,
            seconds=judged.seconds,
            float_value=record.float_counterpart(self.monitor.key, float_logs),
            float_metrics=float_logs,
            validation=self.exporter.validation.describe() if judged.result else None,
            closer_to_float=gates.closer_to_float(logs) if "tflite_mae_vs_float" in logs else None,
            warnings=list(notes.values()),
            skipped_epochs=snapshot.skipped_epochs,
            notes=notes,
            conversion=None if judged.result is None else judged.result.path,
            stream=stream,
        )
        if judged.result is not None and (entry.new_best or not self.store.save_best_only):
            entry.path = str(self._keep(judged, entry))
        if judged.result is not None:
            self._summarize(snapshot, judged, entry)
        self._append(entry)
        return entry

    def _append(self, entry: ExportRecord) -> None:
        """Adds the record to history.jsonl; a full disk there does not undo a kept export."""
        try:
            self.store.append(entry)
        except OSError as error:
            if not artifacts.disk_full(error):
                raise
            entry.notes[record.DISK_FULL] = self.store.disk_full_reason(error, "history.jsonl")

    def _verdict(self, snapshot: Snapshot, judged: Judged):
        """The export's `tflite_*` logs (its streaming model's as `tflite_stream_*`), why it is
        refused (None when it is not), and the monitored value."""
        logs = self.tflite_logs(judged)
        reason = gates.refusal(judged, logs, self.limits, self.exporter.calibration.shortfall)
        if judged.stream is not None:
            stream_logs = self.tflite_logs(judged.stream)
            logs |= {k.replace("tflite_", "tflite_stream_", 1): v for k, v in stream_logs.items()}
        return logs, reason, {**snapshot.logs, **logs}.get(self.monitor.key)

    def _stream_verdict(self, judged: Judged) -> dict[str, Any] | None:
        """The streaming model's place in the export: kept in `stream/` when it passes the same
        gates in TFLite Micro, else why not; and its cost against the window model."""
        stream = judged.stream
        if stream is None:
            return None
        if stream.result is None:
            return {"not_kept": stream.error}
        logs = self.tflite_logs(stream)
        shortfall = self.exporter.calibration.shortfall
        reason = gates.refusal(stream, logs, self.limits, shortfall)
        verdict = {"cost": record.stream_cost(judged)}
        return verdict | ({"not_kept": reason} if reason else {"folder": "stream/"})

    def _improves(self, judged: Judged, reason: str | None, value: Any) -> bool:
        return (
            judged.result is not None
            and reason is None
            and value is not None
            and (self.monitor.improves(float(value)))
        )

    def reference(self, model: Any) -> list[np.ndarray] | None:
        """The float outputs to judge against, for a model trained on JAX or torch (computed on
        the training thread); None on TensorFlow, or when it fails (with a warning)."""
        try:
            return self.exporter.float_reference(model)
        except Exception as error:  # noqa: BLE001 - judged against the TensorFlow rebuild instead
            caller.warn(
                f"TFLiteExportCallback could not compute the float reference on this backend "
                f"({type(error).__name__}: {error}); judging against the TensorFlow rebuild."
            )
            return None

    def tflite_logs(self, judged: Judged) -> dict[str, float]:
        """`tflite_*`: TFLite Micro's (the device's) numbers; `tflite_litert_*`: LiteRT's."""
        if judged.result is None:
            return {}
        logs = {f"tflite_{k}": v for k, v in judged.metrics.items()}
        targets = self.exporter.validation.targets
        runs = {"tflite_val_": judged.micro_outputs, "tflite_litert_val_": judged.litert_outputs}
        for prefix, outputs in runs.items():
            if outputs:
                for name, value in task_metrics(self.compile_config, targets, outputs).items():
                    logs[f"{prefix}{name}"] = value
        return logs

    def float_logs(self, judged: Judged) -> dict[str, float]:
        """The float model's loss and compiled metrics on the samples the int8 model was judged
        on (Keras' `val_*` are over the whole validation set, or another draw)."""
        if judged.result is None or not judged.float_outputs:
            return {}
        targets = self.exporter.validation.targets
        return task_metrics(self.compile_config, targets, judged.float_outputs)

    def manifest(self, judged: Judged, entry: ExportRecord) -> dict[str, Any]:
        return record.manifest(
            judged,
            entry,
            trained_on=self.exporter.trained_on,
            c_symbol=self.c_symbol,
            board=self.exporter.board,
        )

    def _keep(self, judged: Judged, entry: ExportRecord):
        board = self.exporter.board
        files: dict[str, Any] = dict(record.deployment_files(judged, self.c_symbol, board))
        if entry.stream and "folder" in entry.stream:
            files |= record.stream_files(judged, entry.metrics, self.c_symbol, self.exporter.board)
        manifest = self.manifest(judged, entry)
        return self.store.keep(entry, judged.result.tflite, manifest, files, self.c_symbol)

    def _summarize(self, snapshot: Snapshot, judged: Judged, entry: ExportRecord) -> None:
        try:
            best = manifest_markdown(self.manifest(judged, entry)) if entry.new_best else None
            targets = self.exporter.validation.targets
            convert = next(a.seconds for a in judged.result.attempts if a.status == "converted")
            self.summaries.write(
                # Exports every N batches each get their own step: the batch count.
                snapshot.step if self.batch_steps else snapshot.epoch,
                entry.metrics,
                judged.micro_outputs or judged.litert_outputs,
                judged.float_outputs,
                judged.seconds,
                judged.result.num_calibration_samples,
                best,
                export_images(judged, targets) if self.draw else None,
                convert_seconds=convert,
                layer_errors=judged.layer_errors if entry.new_best else None,
            )
        except Exception as error:  # noqa: BLE001 - a chart is never worth an export
            caller.warn(f"TFLiteExportCallback could not write TensorBoard summaries: {error}")

    def close(self) -> None:
        self.exporter.close()
        self.summaries.close()


def build(
    callback: Any, model: Any, log_dir: str, config: dict | None, *, owns_model: bool
) -> ExportPipeline:
    """The pipeline for `callback`'s options (its public attributes), `model` and its compile
    config (the monitored metrics and the int8 model's task metrics come from it).

    Raises:
        ValueError: for data that does not match the model, a Lambda the worker cannot rebuild,
            or a monitor whose direction cannot be told.
    """
    from keras_tflite.callbacks import plots

    exporter = Exporter(
        model,
        callback.representative_data,
        callback.validation_data,
        quantization=callback.quantization,
        batch_size=1,
        num_calibration_samples=callback.num_calibration_samples,
        seed=callback.seed,
        strategies=callback.strategies,
        timeout=callback.timeout,
        # Background exports run at low CPU priority: training keeps the cores it needs.
        niceness=0 if callback.blocking else 10,
        num_validation_samples=callback.num_validation_samples,
        layer_errors=callback.layer_errors,
        owns_model=owns_model,
        streaming=callback.streaming,
        board=Board(callback.target, callback.kernels),
    )
    if callback.validation_data is None:
        caller.warn(
            "TFLiteExportCallback got no validation_data: judging exports on "
            f"{exporter.validation.num_samples} samples drawn from representative_data, which "
            "the calibration also saw."
        )
    monitor = Monitor(
        callback.monitor, callback.mode, callback.min_delta, callback.initial_value_threshold
    )
    monitor.resolve(config)
    store = Store(
        callback.directory, save_best_only=callback.save_best_only, keep_last=callback.keep_last
    )
    previous = store.best_manifest()
    if previous is not None and previous.get("monitor") == callback.monitor:
        monitor.best = previous["value"]  # a resumed run only replaces a better best
    draw = callback.images and plots.available()
    if callback.images and not draw:
        caller.warn(
            "matplotlib is not installed, so TensorBoard images are skipped: "
            'pip install "keras-tflite[plots]" (or images=False to silence this).'
        )
    return ExportPipeline(
        exporter,
        monitor=monitor,
        limits=gates.Gates(
            callback.max_normalized_rmse,
            callback.max_error,
            callback.max_model_bytes,
            callback.max_arena_bytes,
            callback.max_latency_ms,
        ),
        store=store,
        summaries=ExportSummaries(log_dir),
        compile_config=config,
        c_symbol=callback.c_symbol,
        draw=draw,
        batch_steps=isinstance(callback.export_freq, int),
    )
