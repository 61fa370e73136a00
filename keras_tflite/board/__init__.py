"""What a board needs to know before it is flashed: the tensor arena per kernel set on a
32-bit Cortex-M, instructions per inference per core, and the time that takes on a named board."""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_tflite.board.arena import KERNEL_SETS, arena_per_kernel_set, live_bytes
from keras_tflite.board.instructions import CORES, MEASURED_OPS, estimate
from keras_tflite.board.targets import TARGETS, Target, target_named
from keras_tflite.board.work import model_work

__all__ = ["KERNEL_SETS", "TARGETS", "Board", "Target", "check_kernels", "device_report"]

DEFAULT_CORE = "cortex-m4"


def device_report(tflite: bytes, allocations: dict[str, int]) -> dict[str, Any]:
    """The arena per kernel set and instructions per core of a model TFLite Micro ran here.

    Args:
        tflite: The model.
        allocations: `MicroModel.allocations()` after it ran.
    """
    try:
        work = model_work(tflite)
        arenas = arena_per_kernel_set(allocations, work, live_bytes(tflite))
    except Exception as error:  # noqa: BLE001 - a layout the rules do not know: the host's figure
        return _host_only(allocations["total"], f"{type(error).__name__}: {error}")
    other = sorted({op.activation for op in work if op.macs and op.activation != "int8"})
    return {
        "host_arena_bytes": allocations["total"],
        "arena_bytes": arenas,
        # The costs were measured on int8 kernels: float (soft-float on a Cortex-M3) and int16
        # kernels run other code.
        "instructions": {} if other else estimate(work),
        "not_estimated": (
            f"{'/'.join(other)} activations (the estimate covers int8)" if other else None
        ),
        "unmeasured_ops": sorted({op.op for op in work} - MEASURED_OPS),
    }


def _host_only(host_bytes: int, why: str) -> dict[str, Any]:
    """The report when the board rules cannot read the model: the arena TFLite Micro measured
    here for every kernel set (a 64-bit host's, larger than a Cortex-M's tail), no estimate."""
    return {
        "host_arena_bytes": host_bytes,
        "arena_bytes": dict.fromkeys(KERNEL_SETS, host_bytes),
        "instructions": {},
        "not_estimated": f"the board rules could not read this model ({why}); the arena is "
        "the one measured on this machine",
        "unmeasured_ops": [],
    }


def check_kernels(kernels: str | None) -> None:
    if kernels is not None and kernels not in KERNEL_SETS:
        raise ValueError(
            f"Expected kernels to be one of {list(KERNEL_SETS)} or None (the arena fits both). "
            f"Received: kernels={kernels!r}."
        )


@dataclasses.dataclass(frozen=True)
class Board:
    """The board an export is for: a `Target` (or none) and the kernel set its firmware
    builds TFLite Micro with (None: either, so the arena fits the larger)."""

    target: Target | None = None
    kernels: str | None = None

    @classmethod
    def of(cls, target: str | Target | None, kernels: str | None) -> Board:
        check_kernels(kernels)
        return cls(target_named(target), kernels)

    @property
    def core(self) -> str:
        """The core the instruction figure is for: the target's, else a Cortex-M4."""
        return self.target.core if self.target is not None else DEFAULT_CORE

    @property
    def estimate_key(self) -> str:
        """'cortex-m4/cmsis_nn': the core, and the kernels a Cortex-M build uses unless told."""
        return f"{self.core}/{self.kernels or 'cmsis_nn'}"

    @property
    def estimated(self) -> bool:
        """Whether instructions are estimated for this core and kernel set (`CORES`)."""
        return self.estimate_key in CORES

    def metrics(self, device: dict[str, Any]) -> dict[str, float]:
        """`arena_bytes` for the chosen kernel set (the larger when none is), each kernel set's,
        and the estimated `instructions` (and `latency_ms` on a modelled target)."""
        arenas = self.arena_bytes(device)
        chosen = arenas[self.kernels] if self.kernels else max(arenas.values())
        found = {"arena_bytes": float(chosen)}
        found |= {f"arena_bytes_{k}": float(v) for k, v in arenas.items()}
        instructions = device["instructions"].get(self.estimate_key)
        if instructions is not None:
            found["instructions"] = float(instructions)
            if self.target is not None and self.estimated:
                found["latency_ms"] = float(f"{self.target.milliseconds(instructions):.4g}")
        return found

    def arena_bytes(self, device: dict[str, Any]) -> dict[str, int]:
        """Arena bytes per kernel set on this board: CMSIS-NN's for the target's core (its
        buffers differ between the DSP and Helium builds), else for any Cortex-M."""
        found = dict(device["arena_bytes"])
        by_core = found.pop("cmsis_nn_by_core", {})
        if self.target is not None and self.target.core in by_core:
            found["cmsis_nn"] = by_core[self.target.core]
        return found

    def describe(self, device: dict[str, Any]) -> dict[str, Any]:
        """The manifest's account: arena per kernel set and the constant's, instructions per
        core, and the target with its estimated time."""
        metrics = self.metrics(device)
        described: dict[str, Any] = {
            "arena_bytes": self.arena_bytes(device),
            "cmsis_nn_arena_bytes_by_core": device["arena_bytes"].get("cmsis_nn_by_core"),
            "tensor_arena_size": int(metrics["arena_bytes"]),
            "kernels": self.kernels or "either (sized for the larger)",
            "host_arena_bytes": device["host_arena_bytes"],
            "instructions": dict(device["instructions"]),
            "not_estimated": device.get("not_estimated"),
            "unmeasured_ops": device.get("unmeasured_ops"),
        }
        if self.target is not None:
            described["target"] = dataclasses.asdict(self.target) | {
                "cycles_per_instruction": self.target.cpi,
                "estimate": self.estimate_key if self.estimated else None,
                "latency_ms": metrics.get("latency_ms"),
            }
        return described
