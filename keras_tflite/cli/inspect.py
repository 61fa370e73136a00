"""`keras-tflite inspect`: what a deployer asks of a .tflite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def inspect_model(path: str | Path) -> dict[str, Any]:
    """What a deployer asks of a .tflite file: I/O, ops, size, TFLite Micro compatibility, arena."""
    from keras_tflite.runtime.litert import TFLiteModel

    tflite = Path(path).read_bytes()
    model = TFLiteModel(tflite)
    report: dict[str, Any] = {
        "path": str(path),
        "bytes": len(tflite),
        "inputs": [t.to_json() for t in model.inputs],
        "outputs": [t.to_json() for t in model.outputs],
        "ops": model.ops,
    }
    report["tflite_micro"] = micro_check(tflite, model.inputs)
    return report


def micro_check(tflite: bytes, inputs: list[Any] | None = None) -> dict[str, Any]:
    """Whether TFLite Micro runs the model (loaded and invoked on zeros), and its arena."""
    import numpy as np

    from keras_tflite.runtime.micro import MicroModel

    try:
        micro = MicroModel(tflite)
        zeros = [
            np.zeros(t.shape, t.dtype if not t.is_quantized else np.float32)
            for t in (inputs if inputs is not None else micro.inputs)
        ]
        micro.predict(zeros)
        return {"runs": True, "arena_bytes": micro.arena_bytes}
    except RuntimeError as error:
        return {"runs": False, "error": str(error)}


def text(report: dict[str, Any]) -> str:
    lines = [f"{report['path']}: {report['bytes']} bytes"]
    for kind in ("inputs", "outputs"):
        lines.append(f"{kind}:")
        for t in report[kind]:
            quant = (
                f"scale {t['scale']:.6g}, zero point {t['zero_point']}"
                if t["scale"]
                else "not quantized"
            )
            lines.append(f"  {t['name']}: {t['dtype']} {tuple(t['shape'])}, {quant}")
    counts: dict[str, int] = {}
    for op in report["ops"]:
        counts[op] = counts.get(op, 0) + 1
    lines.append("ops: " + ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.items()))
    micro = report["tflite_micro"]
    if micro["runs"]:
        lines.append(f"TFLite Micro: runs; arena {micro['arena_bytes']} bytes")
    else:
        lines.append(f"TFLite Micro: does not run: {micro['error']}")
    return "\n".join(lines)
