"""Keras callbacks. `TFLiteExportCallback` arrives with the callback issue; the engine is ready."""

__all__: list[str] = []
