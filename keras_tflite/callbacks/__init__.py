"""Keras callbacks: the class holds the hooks; `schedule`, `pipeline`, `gates`, `store`,
`monitor` and `record` hold the decisions."""

__all__ = ["TFLiteExportCallback"]


def __getattr__(name: str):
    # The class imports Keras (seconds); the decisions (`gates` for the CLI) do not need it.
    if name == "TFLiteExportCallback":
        from keras_tflite.callbacks.export_callback import TFLiteExportCallback

        return TFLiteExportCallback
    raise AttributeError(f"module 'keras_tflite.callbacks' has no attribute {name!r}")
