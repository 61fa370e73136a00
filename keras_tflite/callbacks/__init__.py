"""Keras callbacks."""

from keras_tflite.callbacks._export_callback import TFLiteExportCallback

__all__ = ["TFLiteExportCallback"]
