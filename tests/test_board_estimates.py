"""The arena per kernel set and the instructions per core against what the real TFLite Micro
measured on emulated Cortex-M cores (tests/board_measurements.py has the figures and their
provenance): every measured model fits the arena, and the estimates stay close."""

from __future__ import annotations

import functools

import pytest
from board_measurements import FIELD_NOTES, WHOLE_MODELS, device

pytestmark = pytest.mark.slow  # real conversions


_device = functools.cache(device)


def _arena(estimated: dict, target: str) -> int:
    """The rule's arena for 'core/kernel set': CMSIS-NN's for that core."""
    core, kernels = target.split("/")
    arenas = estimated["arena_bytes"]
    return arenas["cmsis_nn_by_core"][core] if kernels == "cmsis_nn" else arenas[kernels]


@pytest.mark.parametrize("name", sorted(FIELD_NOTES))
def test_the_field_notes_models_fit_their_arena_with_little_to_spare(name):
    for target, measured in FIELD_NOTES[name]["arena"].items():
        mine = _arena(_device(name), target)
        assert measured <= mine <= 1.10 * measured, (target, measured, mine)


@pytest.mark.parametrize("name", sorted(WHOLE_MODELS))
def test_every_measured_model_fits_its_arena(name):
    estimated = _device(name)
    for target, measured in WHOLE_MODELS[name]["arena"].items():
        # The application's arena: what TFLite Micro used, plus the 16 bytes the field notes'
        # harness spent on resource variables; and CMSIS-NN's figure for any core no smaller.
        mine = _arena(estimated, target)
        assert measured + 16 <= mine <= estimated["arena_bytes"]["cmsis_nn"], (target, mine)


@pytest.mark.parametrize("name", sorted(FIELD_NOTES))
def test_instructions_are_within_a_quarter_of_the_field_notes(name):
    estimated = _device(name)["instructions"]
    for core, measured in FIELD_NOTES[name]["instructions"].items():
        assert estimated[core] == pytest.approx(measured, rel=0.25), core


@pytest.mark.parametrize("name", sorted(WHOLE_MODELS))
def test_instructions_of_every_measured_model_are_close(name):
    estimated = _device(name)["instructions"]
    for core, measured in WHOLE_MODELS[name]["instructions"].items():
        assert estimated[core] == pytest.approx(measured, rel=0.35), core
