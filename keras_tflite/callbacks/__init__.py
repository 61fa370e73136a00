"""Keras callbacks: the class holds the hooks; `schedule`, `pipeline`, `gates`, `store`,
`monitor` and `record` hold the decisions."""

from keras_tflite.callbacks.export_callback import TFLiteExportCallback

__all__ = ["TFLiteExportCallback"]
