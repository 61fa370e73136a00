"""The `keras-tflite` command: inspect a .tflite model, convert a saved model, compare the two.

Exit codes:
  0  success (and the model runs in TFLite Micro)
  1  inspect: the model does not run in TFLite Micro; convert: no strategy converted the model
  2  bad arguments, an unreadable file or data that does not match the model
  3  convert/compare: converted, but TFLite Micro cannot run the model
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from keras_tflite.cli.outcome import ExitCode, UsageError
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.quantization import QUANTIZATION_MODES

_PROGRAMS_WARNING = (
    "SavedModels and TF1 graphs are programs: loading one runs its ops. Convert only models whose "
    "origin you trust. Loading happens in an isolated worker process; Keras files load with "
    "safe_mode, Lambda layers are refused unless --trust, and data files are never unpickled."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-tflite",
        description="Inspect, convert and compare TFLite models for microcontrollers.",
        epilog=__doc__.split("Exit codes:")[1].join(["Exit codes:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="inputs, outputs, ops, TFLite Micro arena, size")
    inspect.add_argument("model", help="a .tflite file")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    _board_options(inspect)

    convert = commands.add_parser(
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
    convert.add_argument("--num-validation-samples", type=int, default=256)
    convert.add_argument("--seed", type=int, default=0)
    convert.add_argument("--c-symbol", default="g_model", help="name of the C array")
    _board_options(convert)
    _source_options(convert)

    compare = commands.add_parser(
        "compare",
        help="a .tflite model against its float source on the same inputs",
        description="Fidelity of MODEL.tflite (LiteRT and TFLite Micro) against the float model "
        "it came from. " + _PROGRAMS_WARNING,
    )
    compare.add_argument("model", help="a .tflite file")
    compare.add_argument("--reference", required=True, help="the float model (any convert SRC)")
    compare.add_argument("--data", required=True, help="inputs (.npy or .npz)")
    compare.add_argument("--num-samples", type=int, default=1000)
    _source_options(compare)
    return parser


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


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", help="output node names, comma-separated (graph formats)")
    parser.add_argument(
        "--input-shape", action="append", help="NAME:D0,D1,... for inputs of unknown shape"
    )
    parser.add_argument("--trust", action="store_true", help="allow Lambda layers (runs code)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per worker step")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("inspect", "convert"):
        from keras_tflite.board import Board

        try:
            args.board = Board.of(args.target, args.kernels)
        except ValueError as error:
            parser.error(str(error))
    if args.command == "inspect":
        from keras_tflite.cli.inspect import inspect_model, text

        try:
            report = inspect_model(args.model, args.board)
        except (OSError, ValueError) as error:  # not a file, or not a .tflite flatbuffer
            print(f"keras-tflite inspect: cannot read {args.model}: {error}", file=sys.stderr)
            return ExitCode.USAGE
        print(json.dumps(report, indent=2) if args.json else text(report))
        return ExitCode.OK if report["tflite_micro"]["runs"] else ExitCode.FAILED
    from keras_tflite.cli import compare, convert

    command = {"convert": convert.convert_command, "compare": compare.compare_command}
    try:
        report, code = command[args.command](args)
    except (UsageError, OSError) as error:  # the user's input; anything else is a bug to show
        if args.json:
            print(json.dumps({"error": str(error)}, indent=2))
        print(f"keras-tflite {args.command}: {error}", file=sys.stderr)
        return ExitCode.USAGE
    print(json.dumps(report, indent=2) if args.json else _summary(args.command, report))
    return code


def _summary(command: str, report: dict[str, Any]) -> str:
    if "error" in report:
        return f"failed: {report['error']}"
    if command == "compare":
        lines = [f"{report['model']} vs {report['reference']} on {report['samples']} samples"]
        lines.append("  LiteRT:       " + _fidelity_line(report["litert"]))
        micro = report["tflite_micro"]
        lines.append(
            "  TFLite Micro: " + (_fidelity_line(micro) if micro["runs"] else micro["error"])
        )
        return "\n".join(lines)
    if not report["converted"]:
        return f"not converted: {report['error']}"
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
        lines.append(
            f"  int8 vs float: MAE {metrics.get('mae_vs_float', float('nan')):.4g} (TFLite Micro), "
            f"{metrics['litert_mae_vs_float']:.4g} (LiteRT)"
        )
    return "\n".join(lines)


def _fidelity_line(metrics: dict[str, Any]) -> str:
    return (
        f"MAE {metrics['mae']:.4g}, max abs error {metrics['max_abs_error']:.4g}, "
        f"SNR {metrics['snr_db']:.1f} dB"
    )


if __name__ == "__main__":
    sys.exit(main())
