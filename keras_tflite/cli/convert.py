"""`keras-tflite convert`: the callback's pipeline for a model saved on disk."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite.callbacks import gates
from keras_tflite.cli import verdict
from keras_tflite.cli.inputs import (
    check_declared_shapes,
    describe_source,
    load_arrays,
    read_arrays,
    source_of,
)
from keras_tflite.cli.inspect import micro_check, micro_summary
from keras_tflite.cli.outcome import ExitCode, UsageError
from keras_tflite.cli.progress import bar, say
from keras_tflite.conversion import describe_result, run_job
from keras_tflite.data import calibration
from keras_tflite.deploy import artifacts, firmware
from keras_tflite.judged import read_judged
from keras_tflite.quantization import CALIBRATED_MODES
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import protocol, strategies, supervisor


def convert_command(args: Any) -> tuple[dict[str, Any], int]:
    """Runs `keras-tflite convert`; returns (report, exit code)."""
    out = Path(args.output)
    if out.exists():
        raise UsageError(f"Expected -o to name a new folder. Received: {str(out)!r}, which exists.")
    source = source_of(args.source, args)
    # The data files are read before the worker loads the model (seconds): a missing or
    # unreadable file is said at once; their shapes are checked once the model's are known.
    if args.calibration is None and args.quantization in CALIBRATED_MODES:
        raise UsageError(
            f"Expected --calibration FILE for --quantization {args.quantization} (int8 "
            "calibration needs samples of the inputs). Received: none."
        )
    stored = {
        option: read_arrays(path, option)
        for option, path in (("--calibration", args.calibration), ("--validation", args.validation))
        if path is not None
    }
    for option, arrays in stored.items():  # against a Keras file's declared inputs, when it has
        check_declared_shapes(source, arrays, option)
    work = Path(tempfile.mkdtemp(prefix="keras_tflite_cli_"))
    worker = supervisor.Worker()  # one for the command: the model is loaded once
    try:
        described = describe_source(source, work, args.timeout, worker)
        inputs = [TensorInfo.from_json(i) for i in described["inputs"]]
        framework = described["framework"]
        samples = _calibration_for(args, inputs, stored.get("--calibration"))
        validation = (
            load_arrays(stored["--validation"], inputs, "--validation") if args.validation else None
        )
        job_dir = work / "convert"
        job_dir.mkdir()
        protocol.Job(
            framework=framework,
            inputs=[i.to_json() for i in inputs],
            quantization=args.quantization,
            source=source,
            model_key=source["path"],
        ).write(job_dir)
        protocol.write_arrays(job_dir / protocol.CALIBRATION_FILE, samples.arrays)
        if validation is not None:
            try:
                checked = calibration.collect(
                    validation, inputs, num_samples=args.num_validation_samples,
                    argument="--validation", calibrates=False,
                )  # fmt: skip
            except ValueError as error:
                raise UsageError(str(error)) from None
            protocol.write_arrays(job_dir / protocol.VALIDATION_FILE, checked.arrays)
        began = time.perf_counter()
        say(
            f"converting {source['kind']} ({framework}) with {samples.num_samples} "
            "calibration samples in the worker...",
            args,
        )
        # A graph's own strategy only: the others take Keras layers (a graph's recurrent loops
        # are rebuilt inside frozen_graph), and listing them as skipped says nothing.
        applies = (framework,) if framework == "graph" else (framework, "any")
        names = [
            n
            for n in strategies.plan(framework, None)
            if strategies.STRATEGIES[n].framework in applies
        ]
        try:
            tflite, attempts = run_job(
                job_dir, names, framework, args.timeout, bar(args), worker=worker
            )
        except Exception as error:  # noqa: BLE001 - reported with exit code 1
            return {"source": source, "converted": False, "error": str(error)}, ExitCode.FAILED
        calibrated = args.quantization in CALIBRATED_MODES
        result = describe_result(
            tflite,
            attempts,
            quantization=args.quantization,
            num_calibration_samples=samples.num_samples if calibrated else 0,
            seed=args.seed,
            batch_size=1,
            facts=supervisor.facts(job_dir),
        )
        board = args.board
        judged = read_judged(job_dir, result, began, board) if validation is not None else None
        report = _report(source, result, judged)
        if judged is not None and judged.error is None:
            report["validation"] = {"samples": checked.num_samples, "available": checked.available}
            logs = {f"tflite_{k}": v for k, v in judged.metrics.items()}
            report["warnings"] = list(gates.notes(judged, logs).values())
        if judged is not None and judged.error:
            report["judge_error"] = judged.error
        refused = _refusal(judged, samples, args)
        if refused:
            report["not_deployable"] = refused
        device = judged.device if judged is not None else None
        if "tflite_micro" not in report:
            micro = micro_check(tflite)
            report["tflite_micro"] = micro_summary(micro, board)
            device = micro.get("device")
        if device is not None:
            report["device"] = board.describe(device)
        arena = report["tflite_micro"].get("arena_bytes")
        manifest = {**report, "versions": _versions()}
        extra = (
            {
                "model_ops.h": firmware.model_header(
                    result.ops,
                    result.inputs,
                    result.outputs,
                    arena,
                    None,
                    board.arena_bytes(device) if device else None,
                ),
                "model.ino": firmware.arduino_sketch(result.inputs, result.outputs, args.c_symbol),
            }
            if arena
            else {}
        )
        artifacts.write_model_set(out, tflite, manifest, c_symbol=args.c_symbol, extra_files=extra)
        report["directory"] = str(out)
        if not report["tflite_micro"]["runs"]:
            return report, ExitCode.NOT_ON_MICRO
        return report, ExitCode.NOT_FAITHFUL if refused else ExitCode.OK
    finally:
        worker.close()
        shutil.rmtree(work, ignore_errors=True)


def _calibration_for(args: Any, inputs: list[TensorInfo], stored: Any):
    if stored is None:  # a mode that does not calibrate (checked before the worker)
        arrays = {i.name: np.zeros((1, *i.shape), i.dtype) for i in inputs}
        return calibration.collect(arrays, inputs, num_samples=1)
    arrays = load_arrays(stored, inputs, "--calibration")
    try:
        return calibration.collect(
            arrays, inputs, num_samples=args.num_calibration_samples, seed=args.seed,
            argument="--calibration",
        )  # fmt: skip
    except ValueError as error:
        raise UsageError(str(error)) from None


def _refusal(judged: Any, samples: Any, args: Any) -> str | None:
    """Why the callback would not keep this model (judged in TFLite Micro), or None."""
    if judged is None or judged.error or judged.micro_error or not judged.metrics:
        return None
    return verdict.refusal(judged, args, samples.shortfall)


def _report(source: dict[str, Any], result: Any, judged: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "source": {k: source[k] for k in ("kind", "path")},
        "converted": True,
        **result.describe(),
    }
    if judged is not None and judged.error is None:
        report["metrics"] = judged.metrics
        runs = judged.micro_error is None
        report["tflite_micro"] = {"runs": runs}
        if runs:
            report["tflite_micro"]["arena_bytes"] = int(judged.metrics["arena_bytes"])
        else:
            report["tflite_micro"]["error"] = judged.micro_error
    return report


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("keras-tflite", "tensorflow", "ai-edge-litert", "tflite-micro")}
