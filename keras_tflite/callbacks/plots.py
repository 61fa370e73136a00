"""Pictures a person reads faster than numbers: predictions over samples, a confusion matrix."""

from __future__ import annotations

import io

import numpy as np

MAX_POINTS = 64


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def predictions_png(
    float_out: np.ndarray, litert: np.ndarray | None, micro: np.ndarray | None
) -> bytes:
    """Float, LiteRT and TFLite Micro predictions of the first output (of the runtimes that ran
    the model): a flat line shows at once.

    A per-sample scalar is drawn across the first validation samples; a sequence output is
    drawn over the time steps of the first sample.
    """
    series = [("float", float_out, "-")]
    if litert is not None:
        series.append(("int8 LiteRT", litert, "--"))
    if micro is not None:
        series.append(("int8 TFLite Micro", micro, ":"))
    figure, axis = _figure()
    sequence = float_out.ndim == 3
    for label, values, style in series:
        line = (
            values[0, :, 0]
            if sequence
            else values[:MAX_POINTS].reshape(len(values[:MAX_POINTS]), -1)[:, 0]
        )
        axis.plot(line, style, label=label, linewidth=1.5)
    axis.set_xlabel("time step of the first validation sample" if sequence else "validation sample")
    axis.set_ylabel("output")
    axis.legend()
    return _png(figure)


def confusion_png(true_classes: np.ndarray, predicted: np.ndarray, classes: int) -> bytes:
    """The int8 model's confusion matrix (rows: true class, columns: predicted)."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (true_classes.astype(int), predicted.astype(int)), 1)
    figure, axis = _figure()
    image = axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axis.text(column, row, str(count), ha="center", va="center", fontsize=7)
    axis.set_xlabel("int8 predicted class (TFLite Micro)")
    axis.set_ylabel("true class")
    figure.colorbar(image, ax=axis)
    return _png(figure)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=100)
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
