"""Boards by name: the core the instruction estimate is for, its clock, and the flash and RAM
budgets an export must fit."""

from __future__ import annotations

import dataclasses

# Cycles per instruction assumed to turn an instruction count into time. Not measured here:
# QEMU counts instructions, not cycles. A Cortex-M4 issues most integer and MAC instructions in
# one cycle and loads in two; flash wait states behind a cache add some. Helium instructions on
# the Cortex-M55's two-beat datapath take two cycles each for a full 128-bit vector.
CYCLES_PER_INSTRUCTION = {"cortex-m3": 1.3, "cortex-m4": 1.3, "cortex-m55": 1.5}


@dataclasses.dataclass(frozen=True)
class Target:
    """A board an export is meant to run on.

    Attributes:
        name: Short name, as `target=` takes it.
        board: The board and its chip.
        core: "cortex-m3", "cortex-m4" or "cortex-m55": the cores the estimate models, or
            another name (no latency estimate).
        clock_hz: The core's clock.
        flash_bytes: Flash (or MRAM) on the chip: the model's bytes must fit, beside the program.
        ram_bytes: RAM on the chip: the tensor arena must fit, beside the program's own data.
        cycles_per_instruction: Assumed cycles per instruction. Defaults to the core's entry
            in `CYCLES_PER_INSTRUCTION`.
    """

    name: str
    board: str
    core: str
    clock_hz: float
    flash_bytes: int
    ram_bytes: int
    cycles_per_instruction: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "core", self.core.lower())
        for field in ("clock_hz", "flash_bytes", "ram_bytes", "cycles_per_instruction"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(
                    f"Expected Target {field} to be a positive number. Received: {value!r}."
                )
        if self.clock_hz < 1e5:
            raise ValueError(
                "Expected Target clock_hz in hertz (64 MHz is 64e6). "
                f"Received: clock_hz={self.clock_hz!r}."
            )

    @property
    def modelled(self) -> bool:
        """Whether the instruction estimate covers this core."""
        return self.core in CYCLES_PER_INSTRUCTION

    @property
    def cpi(self) -> float | None:
        return self.cycles_per_instruction or CYCLES_PER_INSTRUCTION.get(self.core)

    def milliseconds(self, instructions: float) -> float | None:
        """Time for `instructions` at the stated cycles per instruction; None off the model."""
        if not self.modelled:
            return None
        return instructions * self.cpi / self.clock_hz * 1e3


KB, MB = 1024, 1024 * 1024
TARGETS = {
    t.name: t
    for t in (
        Target(
            "nano33ble", "Arduino Nano 33 BLE Sense (nRF52840)", "cortex-m4", 64e6, MB, 256 * KB
        ),
        Target(
            "nucleo_l4r5zi",
            "STM32 NUCLEO-L4R5ZI (STM32L4R5ZI)",
            "cortex-m4",
            120e6,
            2 * MB,
            640 * KB,
        ),
        Target(
            "alif_e7_he",
            "Alif Ensemble E7, its high-efficiency Cortex-M55 (with its TCM)",
            "cortex-m55",
            160e6,
            5632 * KB,
            512 * KB,
        ),
        Target(
            "esp32s3",
            "ESP32-S3 (Xtensa LX7, 8 MB flash module)",
            "xtensa-lx7",
            240e6,
            8 * MB,
            512 * KB,
        ),
    )
}


def target_named(target: str | Target | None) -> Target | None:
    """`target=` as a `Target`: a name from `TARGETS`, or one's own `Target`.

    Raises:
        ValueError: for a name not in `TARGETS`.
    """
    if target is None or isinstance(target, Target):
        return target
    if target not in TARGETS:
        raise ValueError(
            f"Expected target to be one of {sorted(TARGETS)} or a keras_tflite.Target. "
            f"Received: target={target!r}."
        )
    return TARGETS[target]
