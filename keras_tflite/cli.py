"""The `keras-tflite` command: `keras-tflite inspect MODEL.tflite [--json]`.

Exit codes: 0 success; 1 the model does not run in TFLite Micro (inspect still prints the
report); 2 bad arguments or an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def inspect_model(path: str | Path) -> dict[str, Any]:
    """What a deployer asks of a .tflite file: I/O, ops, size, TFLite Micro compatibility, arena."""
    import numpy as np

    from keras_tflite._micro import MicroModel
    from keras_tflite._runtime import TFLiteModel

    tflite = Path(path).read_bytes()
    model = TFLiteModel(tflite)
    report: dict[str, Any] = {
        "path": str(path),
        "bytes": len(tflite),
        "inputs": [t.to_json() for t in model.inputs],
        "outputs": [t.to_json() for t in model.outputs],
        "ops": model.ops,
    }
    try:
        micro = MicroModel(tflite)
        zeros = [
            np.zeros(t.shape, t.dtype if not t.is_quantized else np.float32) for t in model.inputs
        ]
        micro.predict(zeros)
        report["tflite_micro"] = {"runs": True, "arena_bytes": micro.arena_bytes}
    except RuntimeError as error:
        report["tflite_micro"] = {"runs": False, "error": str(error)}
    return report


def _text(report: dict[str, Any]) -> str:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keras-tflite", description="Inspect TFLite models.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="inputs, outputs, ops, TFLite Micro arena, size")
    inspect.add_argument("model", help="a .tflite file")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        report = inspect_model(args.model)
    except (OSError, ValueError) as error:
        print(f"keras-tflite inspect: cannot read {args.model}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else _text(report))
    return 0 if report["tflite_micro"]["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
