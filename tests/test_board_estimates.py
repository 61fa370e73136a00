"""The arena per kernel set and the instructions per core against what the real TFLite Micro
measured on emulated Cortex-M cores (tests/board_measurements.py has the figures and their
provenance): every measured model fits the arena, and the estimates stay close."""

from __future__ import annotations

import pytest
from board_measurements import FIELD_NOTES, WHOLE_MODELS, device

pytestmark = pytest.mark.slow  # real conversions


def _arena(estimated: dict, target: str) -> int:
    """The rule's arena for 'core/kernel set': CMSIS-NN's for that core."""
    core, kernels = target.split("/")
    arenas = estimated["arena_bytes"]
    return arenas["cmsis_nn_by_core"][core] if kernels == "cmsis_nn" else arenas[kernels]


@pytest.mark.parametrize("name", sorted(WHOLE_MODELS))
def test_the_arena_fits_and_the_instructions_are_close_on_every_core(name):
    estimated = device(name)  # converted once per model: each check below reads it
    for target, measured in WHOLE_MODELS[name]["arena"].items():
        # The application's arena: what TFLite Micro used, plus the 16 bytes the field notes'
        # harness spent on resource variables; and CMSIS-NN's figure for any core no smaller.
        mine = _arena(estimated, target)
        assert measured + 16 <= mine <= estimated["arena_bytes"]["cmsis_nn"], (target, mine)
    for core, measured in WHOLE_MODELS[name]["instructions"].items():
        assert estimated["instructions"][core] == pytest.approx(measured, rel=0.35), core
    if name not in FIELD_NOTES:
        return
    # The field notes' table: the arena with at most 10% to spare, instructions within 25%.
    for target, measured in FIELD_NOTES[name]["arena"].items():
        mine = _arena(estimated, target)
        assert measured <= mine <= 1.10 * measured, (target, measured, mine)
    for core, measured in FIELD_NOTES[name]["instructions"].items():
        assert estimated["instructions"][core] == pytest.approx(measured, rel=0.25), core
