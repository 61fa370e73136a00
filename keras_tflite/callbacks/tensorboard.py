"""TensorBoard summaries of each export, beside Keras' own runs so the charts overlay."""

from __future__ import annotations

import os
import posixpath
import re
import sys
from typing import Any

import numpy as np

# Keras writes `epoch_<metric>` under the runs "train" and "validation"; the int8 model's task
# metrics go under these runs with the same tags, so TensorBoard draws the curves in one chart:
# TFLite Micro's (the microcontroller's) and LiteRT's.
TASK_RUN = "validation_tflite"
LITERT_TASK_RUN = "validation_tflite_litert"
STREAM_TASK_RUN = "validation_tflite_stream"
EXPORT_RUN = "tflite"
_TASK_RUNS = {
    "tflite_val_": TASK_RUN,
    "tflite_litert_val_": LITERT_TASK_RUN,
    "tflite_stream_val_": STREAM_TASK_RUN,  # the streaming model's (streaming=True)
}


class ExportSummaries:
    """Writes one export's scalars, error histograms and (at a new best) a text summary.

    `log_dir` may be a local folder or a URL TensorFlow writes to (`gs://bucket/logs`).
    """

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = os.fspath(log_dir)
        self._writers: dict[str, Any] = {}

    def run_dir(self, run: str) -> str:
        # Not pathlib: it would turn "gs://bucket/logs" into "gs:/bucket/logs".
        return (
            posixpath.join(self.log_dir, run)
            if "://" in self.log_dir
            else os.path.join(self.log_dir, run)
        )

    def _writer(self, run: str):
        import tensorflow as tf

        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(self.run_dir(run))
        return self._writers[run]

    def write(
        self,
        step: int,
        logs: dict[str, float],
        quantized: list[np.ndarray],
        expected: list[np.ndarray],
        seconds: float,
        calibration_samples: int,
        best_markdown: str | None,
        images: dict[str, bytes] | None = None,
        convert_seconds: float | None = None,
        layer_errors: list[dict[str, Any]] | None = None,
    ) -> None:
        import tensorflow as tf

        for prefix, run in _TASK_RUNS.items():
            scalars = {k.removeprefix(prefix): v for k, v in logs.items() if k.startswith(prefix)}
            if not scalars:
                continue  # no run without curves: a streaming run only with streaming=True
            with self._writer(run).as_default():
                for name, value in scalars.items():
                    tf.summary.scalar(f"epoch_{name}", value, step=step)
        with self._writer(EXPORT_RUN).as_default():
            for key, value in logs.items():
                if not key.startswith(tuple(_TASK_RUNS)):
                    tf.summary.scalar(_export_tag(key), value, step=step)
            tf.summary.scalar("time/export_seconds", seconds, step=step)
            if convert_seconds is not None:
                tf.summary.scalar("time/convert_seconds", convert_seconds, step=step)
                tf.summary.scalar("time/judge_seconds", seconds - convert_seconds, step=step)
            tf.summary.scalar("calibration/samples", calibration_samples, step=step)
            for i, (q, e) in enumerate(zip(quantized, expected)):
                tf.summary.histogram(f"error/int8_minus_float_output_{i}", q - e, step=step)
            if best_markdown is not None:
                tf.summary.text("best/manifest", best_markdown, step=step)
            if layer_errors:
                tf.summary.text("best/layer_errors", layer_errors_markdown(layer_errors), step=step)
                for row in layer_errors:
                    tag = re.sub(r"[^A-Za-z0-9_./-]", "_", row["layer"])
                    tf.summary.scalar(f"layers/{tag}/rmse", row["rmse"], step=step)
            for tag, png in (images or {}).items():
                tf.summary.image(
                    tag, tf.expand_dims(tf.image.decode_png(png, channels=4), 0), step=step
                )
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def _export_tag(key: str) -> str:
    """'tflite_mae_vs_float' -> 'fidelity/mae_vs_float' (TFLite Micro's); 'tflite_litert_...'
    -> 'litert/...'; the streaming model's 'tflite_stream_...' -> 'stream_fidelity/...' etc."""
    name = key.removeprefix("tflite_")
    stream = name.startswith("stream_")
    name = name.removeprefix("stream_")
    if name.startswith("litert_"):
        tag = f"litert/{name.removeprefix('litert_')}"
    elif name == "model_bytes" or name.startswith("arena_bytes"):
        tag = f"size/{name}"
    elif name == "invoke_seconds":
        tag = "latency/tflite_micro_invoke_seconds"
    elif name in ("instructions", "latency_ms"):  # estimated for the board (docs/board.md)
        tag = f"latency/estimated_{name}"
    else:
        tag = f"fidelity/{name}"
    return f"stream_{tag}" if stream else tag


def summary_dir(callback: Any, log_dir: Any, tensorboard: Any, verbose: int) -> str:
    """The callback's summary folder: `log_dir`, else its `tensorboard`'s, else the fit's
    TensorBoard callback's, else `directory/logs`; said when `verbose`."""
    found = keras_log_dir(callback) if tensorboard is None else tensorboard.log_dir
    chosen = str(log_dir or found or callback.directory / "logs")
    if verbose:
        print(f"TFLiteExportCallback: TensorBoard summaries in {chosen}", flush=True)
    return chosen


def keras_log_dir(callback: Any) -> str | None:
    """The log_dir of a Keras `TensorBoard` callback (or a subclass) in the same fit, if any.

    Keras gives a callback no handle on its siblings, so this looks for the `CallbackList` that
    holds `callback` among the local variables of the frames calling it (no source is read).
    """
    kinds = _tensorboard_classes()
    frame = sys._getframe(1)
    for _ in range(40):
        if frame is None:
            break
        for value in list(frame.f_locals.values()):
            siblings = getattr(value, "callbacks", None)
            if isinstance(siblings, list) and any(s is callback for s in siblings):
                return next((str(s.log_dir) for s in siblings if isinstance(s, kinds)), None)
        frame = frame.f_back
    return None


def _tensorboard_classes() -> tuple[type, ...]:
    """Keras 3's TensorBoard callback, and tf_keras' when tf_keras is in use."""
    import keras

    kinds: list[type] = [keras.callbacks.TensorBoard]
    if "tf_keras" in sys.modules:
        kinds.append(sys.modules["tf_keras"].callbacks.TensorBoard)
    return tuple(kinds)


def layer_errors_markdown(rows: list[dict[str, Any]]) -> str:
    """The layers whose int8 output strays furthest from float, largest RMSE first."""
    lines = ["| layer output | RMSE vs float | max abs error | mean error |", "|---|---|---|---|"]
    lines += [
        f"| `{r['layer']}` | {r['rmse']:.4g} | {r['max_abs_error']:.4g} | {r['mean_error']:.4g} |"
        for r in rows
    ]
    return "\n".join(lines)


def manifest_markdown(manifest: dict[str, Any]) -> str:
    """A Markdown table of what a new best is: where it came from and how good it is."""
    rows = [
        ("epoch", manifest["epoch"]),
        ("step", manifest["step"]),
        (manifest["monitor"], manifest["value"]),
        ("quantization", manifest["quantization"]),
        ("strategy", manifest["strategy"]),
        ("model bytes", manifest["model_bytes"]),
        ("ops", ", ".join(manifest["ops"])),
    ]
    rows += [(k, f"{v:.6g}") for k, v in manifest["metrics"].items()]
    lines = ["| field | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def export_images(judged: Any, targets: list[np.ndarray] | None) -> dict[str, bytes]:
    """Prediction plot for regression and sequence outputs, confusion matrix for classifiers."""
    from keras_tflite.callbacks import plots

    # Whichever runtimes ran the model: LiteRT may have refused it, TFLite Micro failed on it.
    expected = judged.float_outputs[0]
    litert = judged.litert_outputs[0] if judged.litert_outputs else None
    micro = judged.micro_outputs[0] if judged.micro_outputs else None
    device = litert if micro is None else micro
    if device is None:
        return {}
    if expected.ndim == 2 and expected.shape[-1] > 1:  # class scores
        truth = targets[0].reshape(len(targets[0]), -1) if targets else None
        true_classes = (
            expected.argmax(-1)
            if truth is None
            else truth.argmax(-1)
            if truth.shape[-1] > 1
            else truth[:, 0]
        )
        png = plots.confusion_png(true_classes, device.argmax(-1), expected.shape[-1])
        return {"images/confusion_matrix_int8": png}
    return {"images/predictions_float_vs_int8": plots.predictions_png(expected, litert, micro)}
