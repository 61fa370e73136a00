"""`keras-tflite inspect`: what a deployer asks of a .tflite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_tflite.board import Board
from keras_tflite.runtime.native import without_chatter


def inspect_model(path: str | Path, board: Board = Board()) -> dict[str, Any]:
    """What a deployer asks of a .tflite file: I/O, ops, size, TFLite Micro compatibility, and
    what a board needs: the arena per kernel set, instructions per core (and the time on
    `board`'s target)."""
    from keras_tflite.runtime.inspect import io_details, op_names
    from keras_tflite.runtime.litert import TFLiteModel

    tflite = Path(path).read_bytes()
    inputs, outputs = io_details(tflite)  # from the flatbuffer: whatever the runtimes say
    report: dict[str, Any] = {
        "path": str(path),
        "bytes": len(tflite),
        "inputs": [t.to_json() for t in inputs],
        "outputs": [t.to_json() for t in outputs],
        "ops": op_names(tflite),
    }
    try:
        TFLiteModel(tflite)
        report["litert"] = {"runs": True}
    except RuntimeError as error:  # ops outside TFLite's builtins, say
        report["litert"] = {"runs": False, "error": str(error)}
    micro = micro_check(tflite, inputs)
    report["tflite_micro"] = micro_summary(micro, board)
    if "device" in micro:
        report["device"] = board.describe(micro["device"])
    return report


def micro_check(tflite: bytes, inputs: list[Any] | None = None) -> dict[str, Any]:
    """Whether TFLite Micro runs the model (loaded and invoked on zeros), and what a board
    needs for it (`device`: `keras_tflite.board.device_report`)."""
    import numpy as np

    from keras_tflite.board import device_report
    from keras_tflite.runtime.micro import MicroModel

    said: list[str] = []
    try:
        with without_chatter() as said:  # TFLite Micro says why it cannot run a model
            micro = MicroModel(tflite)
            zeros = [
                np.zeros(t.shape, t.dtype if not t.is_quantized else np.float32)
                for t in (inputs if inputs is not None else micro.inputs)
            ]
            micro.predict(zeros)
            allocations = micro.allocations()
        return {"runs": True, "device": device_report(tflite, allocations)}
    except RuntimeError as error:
        return {"runs": False, "error": ": ".join([str(error), *said[-2:]])}


def micro_summary(micro: dict[str, Any], board: Board) -> dict[str, Any]:
    """`micro_check`'s answer as reports give it: runs, and the arena for `board`."""
    if not micro["runs"]:
        return {"runs": False, "error": micro["error"]}
    return {"runs": True, "arena_bytes": int(board.metrics(micro["device"])["arena_bytes"])}


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
    if not report["litert"]["runs"]:
        lines.append(f"LiteRT: does not run: {report['litert']['error']}")
    micro = report["tflite_micro"]
    if not micro["runs"]:
        lines.append(f"TFLite Micro: does not run: {micro['error']}")
        return "\n".join(lines)
    lines.append("TFLite Micro: runs")
    lines += device_lines(report["device"])
    return "\n".join(lines)


def device_lines(device: dict[str, Any]) -> list[str]:
    """The board's figures as text: arena per kernel set, instructions per core, the target."""
    arenas = ", ".join(f"{k} {v} bytes" for k, v in device["arena_bytes"].items())
    lines = [
        f"  arena on a 32-bit Cortex-M: {arenas} (kTensorArenaSize {device['tensor_arena_size']})",
        "  instructions per inference, estimated:",
    ]
    lines += [f"    {k}: {v / 1e6:.3g}M" for k, v in device["instructions"].items()]
    if device.get("unmeasured_ops"):
        lines.append(
            f"    (ops costed by kind, not measured: {', '.join(device['unmeasured_ops'])})"
        )
    target = device.get("target")
    if target is not None:
        if target["latency_ms"] is None:
            why = device.get("not_estimated") or (
                f"instructions are not estimated on a {target['core']} with these kernels"
            )
            lines.append(f"  {target['board']}: no time estimate ({why})")
        else:
            lines.append(
                f"  {target['board']}: ~{target['latency_ms']:.3g} ms per inference "
                f"({target['estimate']} at {target['clock_hz'] / 1e6:g} MHz, "
                f"{target['cycles_per_instruction']:g} cycles per instruction assumed)"
            )
    return lines
