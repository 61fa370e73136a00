"""TF1 session training: `TFLiteExportHook` (a `SessionRunHook`) and `convert_session`.

A live session's variables are frozen into its graph on the training thread (milliseconds); the
frozen graph is converted and judged in the worker as a saved `.pb` is (`worker/graphs.py`), and
every export goes through the callback's pipeline: the same gates, files and history.
"""
