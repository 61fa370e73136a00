"""What an export leaves behind for people: its manifest, deployment files, and one line."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from keras_tflite import _deploy
from keras_tflite._export import Judged


def _deployment_files(judged: Judged, record: dict[str, Any], c_symbol: str) -> dict[str, str]:
    """model_ops.h and model.ino, when TFLite Micro ran the model (so its arena is known)."""
    arena = record["metrics"].get("tflite_arena_bytes")
    if arena is None:
        return {}
    result = judged.result
    return {
        "model_ops.h": _deploy.model_header(result.ops, result.inputs, result.outputs, int(arena)),
        "model.ino": _deploy.arduino_sketch(result.inputs, result.outputs, c_symbol),
    }


def _float_counterpart(monitor: str, logs: dict[str, Any]) -> float | None:
    """The float model's value of an int8 monitor: 'tflite_val_loss' -> logs['val_loss']."""
    value = logs.get(monitor.removeprefix("tflite_")) if monitor.startswith("tflite_") else None
    return None if value is None else float(value)


def _pruning(result: Any) -> dict[str, Any] | None:
    """A pruned model's sparsity per layer and what it saves once compressed (flash images,
    over-the-air updates): int8 flatbuffers store zeros densely."""
    if not result.sparsity:
        return None
    import gzip

    return {
        "sparsity": result.sparsity,
        "model_bytes": result.size,
        "gzip_bytes": len(gzip.compress(result.tflite, mtime=0)),
    }


def _manifest(judged: Judged, record: dict[str, Any], callback: Any) -> dict[str, Any]:
    from importlib.metadata import version

    result = judged.result
    return {
        "epoch": record["epoch"],
        "step": record["step"],
        "time": record["time"],
        "monitor": record["monitor"],
        "value": record["value"],
        "metrics": record["metrics"],
        "quantization": result.quantization,
        "strategy": result.strategy,
        "ops": result.ops,
        "inputs": [t.to_json() for t in result.inputs],
        "outputs": [t.to_json() for t in result.outputs],
        "attempts": [a.to_json() for a in result.attempts],
        "calibration": {
            "samples": result.num_calibration_samples,
            "seed": result.seed,
            "ranges": "learned (quantization-aware training)"
            if result.quantization_aware
            else "calibrated",
        },
        "model_bytes": result.size,
        "pruning": _pruning(result),
        "trained_on": callback._exporter.trained_on,
        "c_symbol": callback.c_symbol,
        "layer_errors": judged.layer_errors,
        "closer_to_float": record.get("closer_to_float"),
        "warnings": record.get("warnings", []),
        "versions": {
            p: version(p)
            for p in ("keras-tflite", "tensorflow", "keras", "ai-edge-litert", "tflite-micro")
        },
    }


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _line(record: dict[str, Any], directory: Path) -> str:
    logs = record["logs"]
    head = f"Epoch {record['epoch']}: "
    skipped = record.get("skipped_epochs") or []
    if skipped:
        head += f"(epoch{'s' if len(skipped) > 1 else ''} {_spans(skipped)} not exported) "
    if not record["exportable"] and not logs:
        return head + f"export failed: {record['reason']}"
    parts = [f"int8 {logs.get('tflite_model_bytes', 0) / 1024:.1f} KB"]
    if "tflite_arena_bytes" in logs:
        parts.append(f"arena {logs['tflite_arena_bytes'] / 1024:.1f} KB")
    if record["value"] is not None:
        float_value = record.get("float_value")
        counterpart = "" if float_value is None else f" (float {float_value:.4g})"
        parts.append(f"{record['monitor']} {record['value']:.4g}{counterpart}")
    if "tflite_mae_vs_float" in logs:
        parts.append(f"MAE vs float {logs['tflite_mae_vs_float']:.3g} in TFLite Micro")
    tail = (
        f"new best, saved to {directory / 'best'}"
        if record["new_best"]
        else ("not exportable: " + record["reason"])
        if not record["exportable"]
        else "not better"
    )
    return head + ", ".join(parts) + " - " + tail


def _spans(epochs: list[int]) -> str:
    """[2, 3, 4, 7] -> '2-4, 7'."""
    spans: list[list[int]] = []
    for epoch in epochs:
        if spans and epoch == spans[-1][1] + 1:
            spans[-1][1] = epoch
        else:
            spans.append([epoch, epoch])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
