"""`keras-tflite convert` and `compare`: the callback's pipeline for a model saved on disk.

The user's model is only ever loaded in the conversion worker; this process reads names,
JSON configs and `.npy`/`.npz` arrays (`allow_pickle=False`: nothing is unpickled).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import _artifacts, _calibration, _deploy, _sources, _strategies, _worker
from keras_tflite._convert import describe_result, run_job
from keras_tflite._export import read_judged
from keras_tflite._fidelity import fidelity
from keras_tflite._quantization import CALIBRATED_MODES
from keras_tflite._specs import TensorInfo
from keras_tflite.cli import micro_check


class UsageError(ValueError):
    """Bad arguments or data: exit code 2."""


def parse_input_shapes(values: list[str]) -> dict[str, list[int]]:
    """["series:1,120,3"] -> {"series": [1, 120, 3]}."""
    shapes = {}
    for value in values:
        name, _, dims = value.rpartition(":")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise UsageError(
                f"Expected --input-shape NAME:D0,D1,... with integer dimensions. Received: {value!r}."
            ) from None
        if not name:
            raise UsageError(f"Expected --input-shape NAME:D0,D1,... Received: {value!r}.")
    return shapes


def _source(path: str, args: Any) -> dict[str, Any]:
    src = Path(path)
    if not src.exists() and not Path(f"{src}.meta").exists() and not Path(f"{src}.index").exists():
        raise UsageError(f"Expected a model to convert. Received: {path!r}, which does not exist.")
    try:
        kind = _sources.detect(src)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if kind in ("keras", "h5") and not args.trust:
        lambdas = _sources.lambda_layers(_sources.keras_config(src, kind))
        if lambdas:
            raise UsageError(
                f"Expected a model without Lambda layers (their code runs when the model loads). "
                f"Received: {lambdas}. Pass --trust if you trust where {path!r} comes from."
            )
    return {
        "kind": kind,
        "path": str(src.resolve()),
        "outputs": [o for o in (args.outputs or "").split(",") if o] or None,
        "input_shapes": parse_input_shapes(args.input_shape or []),
        "trust": bool(args.trust),
    }


def _describe_source(source: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    job_dir = work / "describe"
    job_dir.mkdir()
    _write_job(job_dir, source, framework="", inputs=[], quantization="float32")
    try:
        return _worker.run_mode(job_dir, _worker.DESCRIBE, timeout=timeout)
    except RuntimeError as error:
        raise UsageError(
            str(error).replace("Could not rebuild the model", "Could not load")
        ) from None


def _write_job(job_dir: Path, source, *, framework, inputs, quantization, batch_size=1) -> None:
    job = {
        "source": source,
        "framework": framework,
        "inputs": [i.to_json() for i in inputs],
        "quantization": quantization,
        "batch_size": batch_size,
        "optimizations": [],
        "imports": [],
        "sys_path": [],
        "layer_errors": False,
    }
    (job_dir / "job.json").write_text(json.dumps(job, indent=2))


def load_arrays(path: str, inputs: list[TensorInfo], option: str) -> dict[str, np.ndarray]:
    """Arrays by input name from a `.npy` (one input) or `.npz` (one array per input, by name)."""
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"Expected {option} to be a readable .npy or .npz file: {error}") from None
    names = [i.name for i in inputs]
    if isinstance(stored, np.ndarray):
        if len(inputs) != 1:
            raise UsageError(
                f"Expected {option} to be a .npz with one array per input {names}. Received: one "
                "array (.npy)."
            )
        return {names[0]: stored}
    with stored:
        keys = list(stored.files)
        if len(inputs) == 1 and len(keys) == 1:
            return {names[0]: stored[keys[0]]}
        missing = [n for n in names if n not in keys]
        if missing:
            raise UsageError(
                f"Expected {option} to hold an array per input, named {names}. Received: "
                f"{keys} (missing {missing})."
            )
        return {n: stored[n] for n in names}


def convert_command(args: Any) -> tuple[dict[str, Any], int]:
    """Runs `keras-tflite convert`; returns (report, exit code)."""
    out = Path(args.output)
    if out.exists():
        raise UsageError(f"Expected -o to name a new folder. Received: {str(out)!r}, which exists.")
    source = _source(args.source, args)
    work = Path(tempfile.mkdtemp(prefix="keras_tflite_cli_"))
    try:
        described = _describe_source(source, work, args.timeout)
        inputs = [TensorInfo.from_json(i) for i in described["inputs"]]
        framework = described["framework"]
        calibration = _calibration_for(args, inputs)
        validation = (
            load_arrays(args.validation, inputs, "--validation") if args.validation else None
        )
        job_dir = work / "convert"
        job_dir.mkdir()
        _write_job(
            job_dir, source, framework=framework, inputs=inputs, quantization=args.quantization
        )
        np.savez(job_dir / "calibration.npz", **calibration.arrays)
        if validation is not None:
            checked = _calibration.collect(
                validation, inputs, num_samples=args.num_validation_samples,
                argument="--validation", calibrates=False,
            )  # fmt: skip
            np.savez(job_dir / "validation.npz", **checked.arrays)
        began = time.perf_counter()
        _progress(
            f"converting {source['kind']} ({framework}) with {calibration.num_samples} "
            "calibration samples in the worker...",
            args,
        )
        names = [n for n, s in _strategies.STRATEGIES.items() if s.framework in (framework, "any")]
        try:
            tflite, attempts = run_job(job_dir, names, framework, args.timeout, _bar(args))
        except Exception as error:  # noqa: BLE001 - reported with exit code 1
            return {"source": source, "converted": False, "error": str(error)}, 1
        stand_in = types.SimpleNamespace(output_names=described["outputs"])
        result = describe_result(
            tflite, attempts, stand_in, inputs, calibration, args.quantization, args.seed, 1,
            _worker.facts(job_dir),
        )  # fmt: skip
        judged = read_judged(job_dir, result, began) if validation is not None else None
        report = _report(source, result, judged)
        if judged is not None and judged.error:
            report["judge_error"] = judged.error
        arena = report.get("tflite_micro", {}).get("arena_bytes")
        if "tflite_micro" not in report:
            report["tflite_micro"] = micro_check(tflite)
            arena = report["tflite_micro"].get("arena_bytes")
        manifest = {**report, "versions": _versions()}
        extra = (
            {
                "model_ops.h": _deploy.model_header(
                    result.ops, result.inputs, result.outputs, arena
                ),
                "model.ino": _deploy.arduino_sketch(result.inputs, result.outputs, args.c_symbol),
            }
            if arena
            else {}
        )
        _artifacts.write_model_set(out, tflite, manifest, c_symbol=args.c_symbol, extra_files=extra)
        report["directory"] = str(out)
        return report, 0 if report["tflite_micro"]["runs"] else 3
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _calibration_for(args: Any, inputs: list[TensorInfo]):
    if args.calibration is None:
        if args.quantization in CALIBRATED_MODES:
            raise UsageError(
                f"Expected --calibration FILE for --quantization {args.quantization} (int8 "
                "calibration needs samples of the inputs). Received: none."
            )
        arrays = {i.name: np.zeros((1, *i.shape), i.dtype) for i in inputs}
        return _calibration.collect(arrays, inputs, num_samples=1)
    arrays = load_arrays(args.calibration, inputs, "--calibration")
    try:
        return _calibration.collect(
            arrays, inputs, num_samples=args.num_calibration_samples, seed=args.seed,
            argument="--calibration",
        )  # fmt: skip
    except ValueError as error:
        raise UsageError(str(error)) from None


def _report(source: dict[str, Any], result: Any, judged: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "source": {k: source[k] for k in ("kind", "path")},
        "converted": True,
        "strategy": result.strategy,
        "quantization": result.quantization,
        "model_bytes": result.size,
        "ops": result.ops,
        "inputs": [t.to_json() for t in result.inputs],
        "outputs": [t.to_json() for t in result.outputs],
        "calibration": {"samples": result.num_calibration_samples, "seed": result.seed},
        "attempts": [a.to_json() for a in result.attempts],
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


def compare_command(args: Any) -> tuple[dict[str, Any], int]:
    """Runs `keras-tflite compare`: the .tflite model against its source on the same data."""
    tflite = Path(args.model).read_bytes()
    source = _source(args.reference, args)
    work = Path(tempfile.mkdtemp(prefix="keras_tflite_cli_"))
    try:
        described = _describe_source(source, work, args.timeout)
        inputs = [TensorInfo.from_json(i) for i in described["inputs"]]
        data = _calibration.collect(
            load_arrays(args.data, inputs, "--data"), inputs,
            num_samples=args.num_samples, argument="--data", calibrates=False,
        )  # fmt: skip
        job_dir = work / "compare"
        job_dir.mkdir()
        _write_job(job_dir, source, framework=described["framework"], inputs=inputs,
                   quantization="int8")  # fmt: skip
        np.savez(job_dir / "validation.npz", **data.arrays)
        (job_dir / "model.tflite").write_bytes(tflite)
        _progress(
            f"running {data.num_samples} samples through the reference, LiteRT and TFLite Micro...",
            args,
        )
        try:
            judged = _worker.run_mode(
                job_dir, _worker.JUDGE, timeout=args.timeout, on_events=_bar(args)
            )
        except RuntimeError as error:  # the worker died running the model: exit code 3
            return {"model": args.model, "reference": source["path"], "error": str(error)}, 3
        with np.load(job_dir / "judged.npz") as stored:
            arrays = {k: stored[k] for k in stored.files}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    float_count = sum(1 for k in arrays if k.startswith("float_"))
    litert_count = sum(1 for k in arrays if k.startswith("litert_"))
    if float_count != litert_count:
        raise UsageError(
            f"Expected {args.model} to have the reference's {float_count} output(s). "
            f"Received: {litert_count}."
        )
    count = sum(1 for k in arrays if k.startswith("float_"))
    expected = [arrays[f"float_{i}"] for i in range(count)]
    report: dict[str, Any] = {
        "model": args.model,
        "reference": source["path"],
        "samples": data.num_samples,
        "litert": fidelity(expected, [arrays[f"litert_{i}"] for i in range(count)]),
    }
    if "micro_error" in judged:
        report["tflite_micro"] = {"runs": False, "error": judged["micro_error"]}
        return report, 3
    report["tflite_micro"] = {
        "runs": True,
        "arena_bytes": judged["arena_bytes"],
        **fidelity(expected, [arrays[f"micro_{i}"] for i in range(count)]),
    }
    return report, 0


class ProgressBar:
    """Draws the worker's progress events on stderr: a bar redrawn in place on a terminal, a
    line per quarter otherwise (logs stay short)."""

    def __init__(self, stream: Any = None, width: int = 30):
        self.stream, self.width = stream or sys.stderr, width
        self.shown: dict[str, int] = {}

    def __call__(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if "progress" in event:
                self.draw(**event["progress"])

    def draw(self, stage: str, done: int, total: int) -> None:
        tty = self.stream.isatty()
        step = done * (self.width if tty else 4) // max(total, 1)
        if self.shown.get(stage, -1) >= step:
            return
        self.shown[stage] = step
        filled = done * self.width // max(total, 1)
        bar = f"  {stage:<12} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"
        ending = "\n" if (done >= total or not tty) else ""
        self.stream.write(("\r" if tty else "") + bar + ending)
        self.stream.flush()


def _bar(args: Any) -> ProgressBar | None:
    return None if args.json else ProgressBar()


def _progress(message: str, args: Any) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("keras-tflite", "tensorflow", "ai-edge-litert", "tflite-micro")}
