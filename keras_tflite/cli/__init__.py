"""The `keras-tflite` command: inspect a .tflite model, convert a saved model, compare the two.

Results go to stdout (with --json, one JSON document, errors included); errors, progress and
verdicts to stderr. Exit codes: `outcome.MEANINGS`, printed by every --help.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any

from keras_tflite.cli.outcome import ExitCode, UsageError, exit_codes_text
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES
from keras_tflite.quantization import QUANTIZATION_MODES

_PROGRAMS_WARNING = (
    "SavedModels and TF1 graphs are programs: loading one runs its ops. Convert only models whose "
    "origin you trust. Loading happens in an isolated worker process; Keras files load with "
    "safe_mode, Lambda layers are refused unless --trust, and data files are never unpickled."
)

_JSON_HELP = "one JSON document on stdout, errors included, with the exit code"


class BadArguments(Exception):
    """What argparse refuses, raised rather than printed: `main` says it as --json asks."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(message)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints and exits; main decides how to say it
        raise BadArguments(self, message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keras-tflite",
        description="Inspect, convert and compare TFLite models for microcontrollers.",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = _command(commands, "inspect", help="inputs, outputs, ops, TFLite Micro arena, size")
    inspect.add_argument("model", help="a .tflite file")
    inspect.add_argument("--json", action="store_true", help=_JSON_HELP)
    _board_options(inspect)

    convert = _command(
        commands,
        "convert",
        help="a saved model (.keras, .h5, SavedModel, TF1 checkpoint, frozen .pb) to int8 TFLite",
        description="Convert a saved model with the callback's pipeline. " + _PROGRAMS_WARNING,
    )
    convert.add_argument("source", help=".keras, .h5, SavedModel dir, checkpoint prefix/dir, .pb")
    convert.add_argument("-o", "--output", required=True, help="a new folder for the artifacts")
    convert.add_argument("--calibration", help=".npy (one input) or .npz (an array per input)")
    convert.add_argument("--validation", help="inputs to judge the result on (.npy or .npz)")
    convert.add_argument("--quantization", default="int8", choices=QUANTIZATION_MODES)
    convert.add_argument("--num-calibration-samples", type=int, default=DEFAULT_NUM_SAMPLES)
    convert.add_argument("--num-validation-samples", type=int, default=DEFAULT_VALIDATION_SAMPLES)
    convert.add_argument("--seed", type=int, default=0)
    convert.add_argument("--c-symbol", default="g_model", help="name of the C array")
    _board_options(convert)
    _gate_options(convert)
    _source_options(convert)

    compare = _command(
        commands,
        "compare",
        help="a .tflite model against its float source on the same inputs",
        description="Fidelity of MODEL.tflite (LiteRT and TFLite Micro) against the float model "
        "it came from, and the callback's verdict on TFLite Micro's outputs: a faithful copy or "
        "not. " + _PROGRAMS_WARNING,
    )
    compare.add_argument("model", help="a .tflite file")
    compare.add_argument("--reference", required=True, help="the float model (any convert SRC)")
    compare.add_argument("--data", required=True, help="inputs (.npy or .npz)")
    compare.add_argument("--num-samples", type=int, default=1000)
    _gate_options(compare)
    _source_options(compare)
    return parser


def _command(
    commands: Any, name: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description or help, 79),
        epilog=exit_codes_text(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's lines as written
    )


def _board_options(parser: argparse.ArgumentParser) -> None:
    from keras_tflite.board.targets import TARGETS

    parser.add_argument(
        "--target", help=f"a board, for its time estimate: {', '.join(sorted(TARGETS))}"
    )
    parser.add_argument(
        "--kernels",
        choices=["reference", "cmsis_nn"],
        help="the kernel set the firmware builds (default: an arena that fits either)",
    )


def _gate_options(parser: argparse.ArgumentParser) -> None:
    from keras_tflite.cli.verdict import add_gate_options

    add_gate_options(parser)


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", help="output node names, comma-separated (graph formats)")
    parser.add_argument(
        "--input-shape", action="append", help="NAME:D0,D1,... for inputs of unknown shape"
    )
    parser.add_argument("--trust", action="store_true", help="allow Lambda layers (runs code)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per worker step")
    parser.add_argument("--json", action="store_true", help=_JSON_HELP)


def main(argv: list[str] | None = None) -> int:
    """Runs the command in `argv` (else the process's arguments); returns its exit code."""
    # TensorFlow's C++ start-up lines off, here and in the worker (unless the user chose a level).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except BadArguments as bad:
        bad.parser.print_usage(sys.stderr)
        return _refuse(f"{bad.parser.prog}: error: ", bad.message, "--json" in argv)
    try:
        report, code = _run(args)
    except (UsageError, OSError) as error:  # the user's input; anything else is a bug to show
        return _refuse(f"keras-tflite {args.command}: ", str(error), args.json)
    except Exception as error:
        if args.json:  # a script still gets a JSON document; the traceback goes to stderr
            _print_json({"error": f"{type(error).__name__}: {error}"}, ExitCode.FAILED)
        raise
    if args.json:
        _print_json(report, code)
    elif "error" not in report:
        print(_summary(args.command, report))
    problem = _problem(report)
    if problem:
        print(problem, file=sys.stderr)
    return code


def _board(args: Any) -> Any:
    from keras_tflite.board import Board

    try:
        return Board.of(args.target, args.kernels)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _run(args: Any) -> tuple[dict[str, Any], int]:
    if args.command in ("inspect", "convert"):
        args.board = _board(args)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "convert":
        from keras_tflite.cli.convert import convert_command

        return convert_command(args)
    from keras_tflite.cli.compare import compare_command

    return compare_command(args)


def _inspect(args: Any) -> tuple[dict[str, Any], int]:
    from keras_tflite.cli.inputs import read_tflite
    from keras_tflite.cli.inspect import inspect_model

    read_tflite(args.model)  # a clear "Expected MODEL to be ..." before LiteRT reads it
    report = inspect_model(args.model, args.board)
    return report, ExitCode.OK if report["tflite_micro"]["runs"] else ExitCode.FAILED


def _refuse(prefix: str, message: str, as_json: bool) -> int:
    """Says why the input was refused (stderr; and stdout as JSON with --json): exit code 2."""
    if as_json:
        _print_json({"error": message}, ExitCode.USAGE)
    print(prefix + message, file=sys.stderr)
    return ExitCode.USAGE


def _print_json(report: dict[str, Any], code: int) -> None:
    print(json.dumps({**report, "exit_code": int(code)}, indent=2))


def _problem(report: dict[str, Any]) -> str | None:
    """What went wrong in a command that ran, for stderr: results stay on stdout."""
    if "error" in report:
        said = "not converted" if report.get("converted") is False else "failed"
        return f"{said}: {report['error']}"
    micro = report.get("tflite_micro") or {}
    if micro.get("runs") is False:
        return f"TFLite Micro cannot run it: {micro['error']}"
    if report.get("not_deployable"):
        return f"not deployable: {report['not_deployable']}"
    if report.get("not_faithful"):
        return f"not faithful: {report['not_faithful']}"
    return None


def _summary(command: str, report: dict[str, Any]) -> str:
    if command == "inspect":
        from keras_tflite.cli.inspect import text

        return text(report)
    if command == "compare":
        lines = [f"{report['model']} vs {report['reference']} on {report['samples']} samples"]
        litert = report["litert"]
        lines.append(
            "  LiteRT:       " + (_fidelity_line(litert) if "mae" in litert else litert["error"])
        )
        micro = report["tflite_micro"]
        lines.append(
            "  TFLite Micro: " + (_fidelity_line(micro) if micro["runs"] else micro["error"])
        )
        answer = "yes" if report["faithful"] else "no (why: on stderr)"
        lines.append(f"  a faithful copy in TFLite Micro: {answer}")
        return "\n".join(lines)
    lines = [
        f"{report['directory']}/: int8 model {report['model_bytes']} bytes via "
        f"{report['strategy']}, {report['calibration']['samples']} calibration samples",
        "  inputs:  " + ", ".join(f"{t['name']} {tuple(t['shape'])}" for t in report["inputs"]),
        "  outputs: " + ", ".join(f"{t['name']} {tuple(t['shape'])}" for t in report["outputs"]),
    ]
    micro = report["tflite_micro"]
    if micro["runs"]:
        from keras_tflite.cli.inspect import device_lines

        lines += ["  TFLite Micro: runs"] + ["  " + line for line in device_lines(report["device"])]
    else:
        lines.append(f"  TFLite Micro: does not run: {micro['error']}")
    metrics = report.get("metrics")
    if metrics:
        runtimes = {"TFLite Micro": "mae_vs_float", "LiteRT": "litert_mae_vs_float"}
        measured = [
            f"{metrics[key]:.4g} ({name})" for name, key in runtimes.items() if key in metrics
        ]
        if measured:
            on = report["validation"]
            drawn = "" if on["available"] <= on["samples"] else f" of {on['available']}"
            lines.append(
                f"  int8 vs float on {on['samples']}{drawn} samples: MAE " + ", ".join(measured)
            )
        lines += [f"  note: {text}" for text in report.get("warnings", [])]
    return "\n".join(lines)


def _fidelity_line(metrics: dict[str, Any]) -> str:
    return (
        f"MAE {metrics['mae']:.4g}, max abs error {metrics['max_abs_error']:.4g}, "
        f"normalized RMSE {metrics['normalized_rmse']:.3g}, SNR {metrics['snr_db']:.1f} dB"
    )


if __name__ == "__main__":
    sys.exit(main())
