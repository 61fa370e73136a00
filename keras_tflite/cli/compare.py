"""`keras-tflite compare`: a .tflite model against its float source, in LiteRT and TFLite Micro."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from keras_tflite.board import Board
from keras_tflite.cli.inputs import describe_source, load_arrays, source_of
from keras_tflite.cli.outcome import ExitCode, UsageError
from keras_tflite.cli.progress import bar, say
from keras_tflite.data import calibration
from keras_tflite.runtime.fidelity import fidelity
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import protocol, supervisor


def compare_command(args: Any) -> tuple[dict[str, Any], int]:
    """Runs `keras-tflite compare`: the .tflite model against its source on the same data."""
    tflite = Path(args.model).read_bytes()
    source = source_of(args.reference, args)
    work = Path(tempfile.mkdtemp(prefix="keras_tflite_cli_"))
    worker = supervisor.Worker()  # one for the command: the model is loaded once
    try:
        described = describe_source(source, work, args.timeout, worker)
        inputs = [TensorInfo.from_json(i) for i in described["inputs"]]
        try:
            data = calibration.collect(
                load_arrays(args.data, inputs, "--data"), inputs,
                num_samples=args.num_samples, argument="--data", calibrates=False,
            )  # fmt: skip
        except ValueError as error:
            raise UsageError(str(error)) from None
        job_dir = work / "compare"
        job_dir.mkdir()
        protocol.Job(
            framework=described["framework"],
            inputs=[i.to_json() for i in inputs],
            quantization="int8",
            source=source,
            model_key=source["path"],
        ).write(job_dir)
        protocol.write_arrays(job_dir / protocol.VALIDATION_FILE, data.arrays)
        (job_dir / protocol.MODEL_FILE).write_bytes(tflite)
        say(
            f"running {data.num_samples} samples through the reference, LiteRT and TFLite Micro...",
            args,
        )
        try:
            judged = worker.run_mode(
                job_dir, protocol.JUDGE, timeout=args.timeout, on_events=bar(args)
            )
        except RuntimeError as error:  # the worker died running the model
            report = {"model": args.model, "reference": source["path"], "error": str(error)}
            return report, ExitCode.NOT_ON_MICRO
        arrays = protocol.read_judged(job_dir)
    finally:
        worker.close()
        shutil.rmtree(work, ignore_errors=True)
    if len(arrays.expected) != len(arrays.litert):
        raise UsageError(
            f"Expected {args.model} to have the reference's {len(arrays.expected)} output(s). "
            f"Received: {len(arrays.litert)}."
        )
    report: dict[str, Any] = {
        "model": args.model,
        "reference": source["path"],
        "samples": data.num_samples,
        "litert": fidelity(arrays.expected, arrays.litert),
    }
    if "micro_error" in judged:
        report["tflite_micro"] = {"runs": False, "error": judged["micro_error"]}
        return report, ExitCode.NOT_ON_MICRO
    report["tflite_micro"] = {
        "runs": True,
        "arena_bytes": int(Board().metrics(judged["device"])["arena_bytes"]),
        **fidelity(arrays.expected, arrays.micro),
    }
    return report, ExitCode.OK
