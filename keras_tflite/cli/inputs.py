"""What the user hands `keras-tflite convert` and `compare`: a saved model and `.npy`/`.npz`
arrays, checked here. The user's model is only ever loaded in the conversion worker; this
process reads names, JSON configs and arrays (`allow_pickle=False`: nothing is unpickled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import formats
from keras_tflite.cli.outcome import UsageError
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import protocol, supervisor


def parse_input_shapes(values: list[str]) -> dict[str, list[int]]:
    """["series:1,120,3"] -> {"series": [1, 120, 3]}."""
    shapes = {}
    for value in values:
        name, _, dims = value.rpartition(":")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise UsageError(
                "Expected --input-shape NAME:D0,D1,... with integer dimensions. "
                f"Received: {value!r}."
            ) from None
        if not name:
            raise UsageError(f"Expected --input-shape NAME:D0,D1,... Received: {value!r}.")
    return shapes


def source_of(path: str, args: Any) -> dict[str, Any]:
    """The saved model at `path`, checked from its name and JSON only: its format, and no Lambda
    layer (whose code would run on load) unless `--trust`."""
    src = Path(path)
    if not src.exists() and not Path(f"{src}.meta").exists() and not Path(f"{src}.index").exists():
        raise UsageError(f"Expected a model to convert. Received: {path!r}, which does not exist.")
    try:
        kind = formats.detect(src)
        config = formats.keras_config(src, kind) if kind in ("keras", "h5") else None
    except ValueError as error:  # no such format, a weights-only file, broken JSON
        raise UsageError(str(error)) from None
    if config is not None and not args.trust:
        lambdas = formats.lambda_layers(config)
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


def describe_source(
    source: dict[str, Any], work: Path, timeout: float, worker: supervisor.Worker
) -> dict[str, Any]:
    """The source's framework, inputs and outputs, as the worker that loaded it reports them."""
    job_dir = work / "describe"
    job_dir.mkdir()
    job = protocol.Job(framework="", inputs=[], quantization="float32", source=source)
    job.model_key = source["path"]
    job.write(job_dir)
    try:
        return worker.run_mode(job_dir, protocol.DESCRIBE, timeout=timeout)
    except RuntimeError as error:
        raise UsageError(
            str(error).replace("Could not rebuild the model", "Could not load")
        ) from None


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
