"""Whether a model is a faithful copy of its float source, for `convert --validation` and
`compare`: the callback's gates (`callbacks.gates`), judged on TFLite Micro's outputs."""

from __future__ import annotations

import argparse
from typing import Any

from keras_tflite.callbacks import gates


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    """The gates a user may move: how far TFLite Micro's outputs may stray from float's."""
    parser.add_argument(
        "--max-normalized-rmse",
        type=_positive,
        default=gates.DEFAULT_MAX_NORMALIZED_RMSE,
        help="largest RMSE vs float, over the float outputs' spread, of a faithful copy "
        "(an error within one int8 output step always passes). Defaults to %(default)s",
    )
    parser.add_argument(
        "--max-error",
        type=_positive,
        help="largest mean absolute error vs float, in the outputs' units. Defaults to none",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"Expected a positive number. Received: {text!r}.")
    return value


def gates_of(args: Any) -> gates.Gates:
    return gates.Gates(max_normalized_rmse=args.max_normalized_rmse, max_error=args.max_error)


def refusal(
    judged: Any, args: Any, shortfall: str | None, advice: gates.Advice = gates.CLI_ADVICE
) -> str | None:
    """Why `judged` (a `judged.Judged`) is not a faithful copy in TFLite Micro, or None.

    Args:
        judged: The model's judgement on the validation data.
        args: The command's arguments (its gate options).
        shortfall: Why its calibration samples may be too few, when they may be.
        advice: What to do about it, in the command's words.
    """
    logs = {f"tflite_{k}": v for k, v in judged.metrics.items()}
    return gates.refusal(judged, logs, gates_of(args), shortfall, advice)
