"""`keras-tflite compare`: a .tflite model against its float source, in LiteRT and TFLite Micro,
with the callback's verdict: is TFLite Micro's answer a faithful copy of the float model's?"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from keras_tflite.callbacks import gates
from keras_tflite.cli import verdict
from keras_tflite.cli.inputs import (
    describe_source,
    load_arrays,
    read_arrays,
    read_tflite,
    source_of,
    tflite_inputs,
)
from keras_tflite.cli.outcome import ExitCode, UsageError
from keras_tflite.cli.progress import bar, say
from keras_tflite.conversion import ConversionResult
from keras_tflite.data import calibration
from keras_tflite.data.calibration import MIN_RECOMMENDED_SAMPLES
from keras_tflite.data.samples import shape_fits, shape_text
from keras_tflite.judged import Judged, read_judged
from keras_tflite.runtime.fidelity import fidelity
from keras_tflite.runtime.inspect import io_details, op_names
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import protocol, supervisor

# A .tflite the user made elsewhere: what to do when its copy strays, in compare's words.
COMPARE_ADVICE = gates.Advice(
    more_samples="if it was calibrated on few samples, convert it again with a --calibration "
    "file of more samples",
    find_the_layer="if --reference is the model it was converted from, "
    + gates.CLI_ADVICE.find_the_layer,
)


def compare_command(args: Any) -> tuple[dict[str, Any], int]:
    """Runs `keras-tflite compare`: the .tflite model against its source on the same data.

    Every file is checked before the worker loads the reference: the .tflite (a verified
    flatbuffer), the reference's path and the data (against the .tflite's own inputs).
    """
    tflite = read_tflite(args.model)
    source = source_of(args.reference, args)
    data = _data_for(args, tflite_inputs(tflite))
    work = Path(tempfile.mkdtemp(prefix="keras_tflite_cli_"))
    worker = supervisor.Worker()  # one for the command: the model is loaded once
    try:
        described = describe_source(source, work, args.timeout, worker)
        inputs = _reference_inputs(described, tflite, args)
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
        began = time.perf_counter()
        try:
            worker.run_mode(job_dir, protocol.JUDGE, timeout=args.timeout, on_events=bar(args))
        except RuntimeError as error:  # the worker died running the model
            report = {"model": args.model, "reference": source["path"], "error": str(error)}
            return report, ExitCode.NOT_ON_MICRO
        made = _made_with(Path(args.model), tflite)
        judged = read_judged(job_dir, _result_of(tflite, made), began)
    finally:
        worker.close()
        shutil.rmtree(work, ignore_errors=True)
    return _judged_report(args, source, data.num_samples, judged, made)


def _data_for(args: Any, inputs: list[TensorInfo]) -> calibration.Calibration:
    """--data, checked against the .tflite's inputs (names and per-sample shapes)."""
    arrays = load_arrays(read_arrays(args.data, "--data"), inputs, "--data")
    try:
        return calibration.collect(
            arrays, inputs, num_samples=args.num_samples, argument="--data", calibrates=False
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _reference_inputs(described: dict[str, Any], tflite: bytes, args: Any) -> list[TensorInfo]:
    """The reference's inputs, once they are the .tflite's (names, per-sample shapes) and its
    outputs as many: else the two are not the same model."""
    reference = [TensorInfo.from_json(i) for i in described["inputs"]]
    model = tflite_inputs(tflite)
    same = [r.name for r in reference] == [m.name for m in model] and all(
        shape_fits(r.shape, m.shape) for r, m in zip(reference, model)
    )
    if not same:
        raise UsageError(
            f"Expected --reference to have the inputs of {args.model}: "
            f"{_inputs_text(model)}. Received: {args.reference!r}, with {_inputs_text(reference)}."
        )
    outputs = described.get("outputs")
    count = len(io_details(tflite)[1])
    if outputs is not None and len(outputs) != count:
        raise UsageError(
            f"Expected --reference to have the {count} output(s) of {args.model}. Received: "
            f"{args.reference!r}, with {len(outputs)} ({outputs})."
        )
    return reference


def _inputs_text(inputs: list[TensorInfo]) -> str:
    return ", ".join(f"'{i.name}' {shape_text(i.shape)}" for i in inputs)


def _made_with(path: Path, tflite: bytes) -> dict[str, Any]:
    """How the model was made, from the manifest.json `convert` and the callback write beside
    it (when it describes these bytes); else {}."""
    try:
        manifest = json.loads((path.parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("model_bytes") != len(tflite):
        return {}
    return manifest


def _result_of(tflite: bytes, made: dict[str, Any]) -> ConversionResult:
    """The .tflite as a `ConversionResult`, for the callback's judgement of it."""
    inputs, outputs = io_details(tflite)
    calibrated = made.get("calibration") or {}
    return ConversionResult(
        tflite=tflite,
        strategy=made.get("strategy", "given"),
        ops=op_names(tflite),
        inputs=inputs,
        outputs=outputs,
        attempts=[],
        quantization=made.get("quantization", "unknown"),
        num_calibration_samples=int(calibrated.get("samples", 0)),
        seed=int(calibrated.get("seed", 0)),
        batch_size=1,
        quantization_aware=str(calibrated.get("ranges", "")).startswith("learned"),
    )


def _shortfall(made: dict[str, Any]) -> str | None:
    """Why the model's calibration samples may have been too few, as far as is known."""
    if not made:
        return "its calibration is unknown, with no keras-tflite manifest.json beside it"
    samples = int((made.get("calibration") or {}).get("samples", 0))
    if 0 < samples < MIN_RECOMMENDED_SAMPLES:
        return f"calibrated on only {samples} samples"
    return None


def _judged_report(
    args: Any, source: dict[str, Any], samples: int, judged: Judged, made: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    report: dict[str, Any] = {
        "model": args.model,
        "reference": source["path"],
        "samples": samples,
        "litert": (
            fidelity(judged.float_outputs, judged.litert_outputs)
            if judged.litert_outputs
            else {"runs": False, "error": judged.litert_note}
        ),
    }
    if judged.litert_note:
        report["litert"]["note"] = judged.litert_note
    report["gates"] = {"max_normalized_rmse": args.max_normalized_rmse, "max_error": args.max_error}
    if judged.micro_error:
        report["tflite_micro"] = {"runs": False, "error": judged.micro_error}
        report["faithful"] = False
        return report, ExitCode.NOT_ON_MICRO
    report["tflite_micro"] = {
        "runs": True,
        "arena_bytes": int(judged.metrics["arena_bytes"]),
        **fidelity(judged.float_outputs, judged.micro_outputs),
    }
    refused = verdict.refusal(judged, args, _shortfall(made), COMPARE_ADVICE)
    report["faithful"] = refused is None
    if refused is None:
        return report, ExitCode.OK
    report["not_faithful"] = refused
    return report, ExitCode.NOT_FAITHFUL
