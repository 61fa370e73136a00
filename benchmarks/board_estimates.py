"""The board estimates against the real TFLite Micro: for every model measured on emulated
Cortex-M cores (tests/board_measurements.py), the arena rule per kernel set and the
instruction estimate per core over what was measured.

Run: python benchmarks/board_estimates.py [--single-ops]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from board_measurements import FIELD_NOTES, SINGLE_OPS, WHOLE_MODELS, device  # noqa: E402

from keras_tflite.board.instructions import CORES  # noqa: E402


def arena_rows(measured: dict, devices: dict, source: str) -> list[str]:
    rows = []
    for name, figures in measured.items():
        cells = []
        for target, bytes_used in sorted(figures["arena"].items()):
            core, kernels = target.split("/")
            arenas = devices[name]["arena_bytes"]
            mine = arenas["cmsis_nn_by_core"][core] if kernels == "cmsis_nn" else arenas[kernels]
            cells.append(f"{bytes_used:,} / {mine:,} ({mine / bytes_used - 1:+.1%})")
        rows.append(f"| {name} ({source}) | " + " | ".join(cells) + " |")
    return rows


def instruction_rows(measured: dict, devices: dict, source: str) -> list[str]:
    rows = []
    for name, figures in measured.items():
        cells = []
        for core in CORES:
            value = figures["instructions"].get(core)
            mine = devices[name]["instructions"][core]
            cells.append("–" if not value else f"{value / 1e6:.3g}M: {mine / value:.2f}")
        rows.append(f"| {name} ({source}) | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-ops", action="store_true", help="the fitted single-op models")
    args = parser.parse_args()
    sets = [(FIELD_NOTES, "field notes"), (WHOLE_MODELS, "measured")]
    if args.single_ops:
        sets.append((SINGLE_OPS, "single op"))
    devices = {name: device(name) for measured, _ in sets for name in measured}
    print("Arena: measured / the rule (spare), per target")
    for measured, source in sets:
        targets = sorted({t for f in measured.values() for t in f["arena"]})
        print(f"\n| model | {' | '.join(targets)} |\n|---|" + "---|" * len(targets))
        print("\n".join(arena_rows(measured, devices, source)))
    print("\nInstructions per inference: measured: estimate over measured")
    print(f"\n| model | {' | '.join(CORES)} |\n|---|" + "---|" * len(CORES))
    for measured, source in sets:
        print("\n".join(instruction_rows(measured, devices, source)))
    worst = max(
        abs(devices[n]["instructions"][c] / v - 1)
        for measured, _ in sets[:2]
        for n, f in measured.items()
        for c, v in f["instructions"].items()
    )
    print(f"\nLargest instruction error on the whole models: {worst:.0%}")


if __name__ == "__main__":
    main()
