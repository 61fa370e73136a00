"""What the user hands `keras-tflite convert`, `compare` and `inspect`: a saved model, a `.tflite`
file and `.npy`/`.npz` arrays, checked here before any model loads. The user's saved model is
only ever loaded in the conversion worker; this process reads names, JSON configs, arrays
(`allow_pickle=False`: nothing is unpickled) and verifies `.tflite` flatbuffers.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import formats
from keras_tflite.cli.outcome import UsageError
from keras_tflite.runtime.inspect import io_details
from keras_tflite.runtime.native import without_chatter
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import protocol, supervisor

TFLITE_IDENTIFIER = b"TFL3"  # a flatbuffer's file identifier sits at bytes 4-8
NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"  # .npy; .npz (and .keras) are zip archives
# What a file that is not a .tflite usually is, by its first bytes.
_SIGNATURES = {
    ZIP_MAGIC: "a zip archive (a .keras model or an .npz?)",
    b"\x89HDF\r\n\x1a\n": "an HDF5 file (an .h5 model?)",
    NPY_MAGIC: "a .npy array",
}


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


def read_arrays(path: str, option: str) -> dict[str, np.ndarray] | np.ndarray:
    """The arrays of a `.npy` or `.npz` file, checked before any model loads: readable, and
    every array holding the same number of samples, at least one.

    Returns:
        The array of a `.npy`; a dict by name of a `.npz`'s arrays.

    Raises:
        UsageError: naming `option`, what was expected and what the file holds.
    """
    expected = f"Expected {option} to be a .npy or .npz file of numpy arrays"
    start = _read_file(path, expected, limit=16)
    if not start.startswith((NPY_MAGIC, ZIP_MAGIC)):
        raise UsageError(f"{expected}. Received: {path!r}, which is neither (it begins {start!r}).")
    try:
        stored = np.load(path, allow_pickle=False)
        if isinstance(stored, np.ndarray):
            arrays: dict[str, np.ndarray] | np.ndarray = stored
            counts = {"the array": _samples(stored)}
        else:
            with stored:
                arrays = {key: stored[key] for key in stored.files}
            counts = {key: _samples(a) for key, a in arrays.items()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise UsageError(
            f"{expected}. Received: {path!r}, which numpy cannot read ({error})."
        ) from None
    if not counts:
        raise UsageError(
            f"Expected {option} to hold an array per input. Received: {path!r}, a .npz file "
            "with no arrays."
        )
    if min(counts.values()) < 1:
        raise UsageError(
            f"Expected {option} to hold at least one sample (arrays of shape (samples, ...)). "
            f"Received: {path!r}, holding {_shapes_text(arrays)}."
        )
    if len(set(counts.values())) > 1:
        raise UsageError(
            f"Expected every array of {option} to hold the same number of samples. Received: "
            f"{path!r}, holding {counts}."
        )
    return arrays


def _read_file(path: str, expected: str, limit: int = -1) -> bytes:
    """The file's bytes (its first `limit`); a missing, unreadable or empty file is a
    `UsageError` saying so."""
    file = Path(path)
    if not file.exists():
        raise UsageError(f"{expected}. Received: {path!r}, which does not exist.")
    if file.is_dir():
        raise UsageError(f"{expected}. Received: {path!r}, a directory.")
    try:
        with file.open("rb") as opened:
            data = opened.read(limit)
    except OSError as error:
        raise UsageError(
            f"{expected}. Received: {path!r}, which cannot be read ({error})."
        ) from None
    if not data:
        raise UsageError(f"{expected}. Received: {path!r}, an empty file (0 bytes).")
    return data


def _samples(array: np.ndarray) -> int:
    return len(array) if array.ndim else 0


def _shapes_text(arrays: dict[str, np.ndarray] | np.ndarray) -> str:
    if isinstance(arrays, np.ndarray):
        return f"an array of shape {arrays.shape}"
    return "arrays of shape " + ", ".join(f"{k!r} {a.shape}" for k, a in arrays.items())


def check_declared_shapes(
    source: dict[str, Any], stored: dict[str, np.ndarray] | np.ndarray, option: str
) -> None:
    """Compares the data with the inputs a `.keras` or `.h5` file declares, before the model
    loads (other formats are checked once the worker has loaded them).

    Raises:
        UsageError: naming `option` and the input, when an array's per-sample shape differs.
    """
    from keras_tflite.data.samples import shape_fits, shape_text

    if source["kind"] not in ("keras", "h5"):
        return
    declared = formats.keras_inputs(formats.keras_config(Path(source["path"]), source["kind"]))
    if not declared:
        return
    if isinstance(stored, np.ndarray) or (len(declared) == 1 and len(stored) == 1):
        only = stored if isinstance(stored, np.ndarray) else next(iter(stored.values()))
        arrays = {declared[0][0]: only} if len(declared) == 1 else {}
    else:
        arrays = {name: stored[name] for name, _ in declared if name in stored}
    for name, shape in declared:
        array = arrays.get(name)
        if array is not None and not shape_fits(shape, array.shape[1:]):
            raise UsageError(
                f"Expected {option} input '{name}' to have per-sample shape {shape_text(shape)}, "
                f"as the model declares it. Received: an array of shape {tuple(array.shape)}."
            )


def load_arrays(
    stored: dict[str, np.ndarray] | np.ndarray, inputs: list[TensorInfo], option: str
) -> dict[str, np.ndarray]:
    """Arrays by input name from `read_arrays`' answer: a `.npy` for one input, a `.npz` with an
    array per input, by name (or its one array, for a one-input model)."""
    names = [i.name for i in inputs]
    if isinstance(stored, np.ndarray):
        if len(inputs) != 1:
            raise UsageError(
                f"Expected {option} to be a .npz with one array per input {names}. Received: one "
                "array (.npy)."
            )
        return {names[0]: stored}
    keys = list(stored)
    if len(inputs) == 1 and len(keys) == 1:
        return {names[0]: stored[keys[0]]}
    missing = [n for n in names if n not in keys]
    if missing:
        raise UsageError(
            f"Expected {option} to hold an array per input, named {names}. Received: "
            f"{keys} (missing {missing})."
        )
    return {n: stored[n] for n in names}


def read_tflite(path: str, option: str = "MODEL") -> bytes:
    """The bytes of a `.tflite` file, verified as a TFLite flatbuffer before anything runs it
    (LiteRT's flatbuffer verifier: every offset and size within the file).

    Raises:
        UsageError: naming `option`, when the file is missing, empty, not a flatbuffer
            (another kind of file) or a flatbuffer that fails verification (truncated).
    """
    expected = f"Expected {option} to be a .tflite file (a TFLite flatbuffer)"
    tflite = _read_file(path, expected)
    if tflite[4:8] != TFLITE_IDENTIFIER:
        raise UsageError(f"{expected}. Received: {path!r}, {_kind_of_file(tflite)}.")
    from ai_edge_litert.interpreter import Interpreter

    try:
        with without_chatter():
            Interpreter(model_content=tflite)  # verifies; tensors are allocated only on demand
    except (ValueError, RuntimeError) as error:
        if "not a valid Flatbuffer" not in str(error):
            raise UsageError(f"{expected} LiteRT loads. Received: {path!r}: {error}") from None
        raise UsageError(
            f"{expected}. Received: {path!r}, a TFLite flatbuffer of {len(tflite)} bytes that "
            "fails verification: truncated or corrupted."
        ) from None
    return tflite


def _kind_of_file(data: bytes) -> str:
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            return f"{kind}, not a TFLite flatbuffer"
    return (
        f"a file of {len(data)} bytes without the TFLite identifier {TFLITE_IDENTIFIER.decode()!r} "
        f"at bytes 4-8 (it begins {data[:16]!r})"
    )


def tflite_inputs(tflite: bytes) -> list[TensorInfo]:
    """A verified `.tflite`'s inputs as data for it must be: name, per-sample shape (the
    flatbuffer's batch dimension dropped, as its runners take any batch) and the float dtype
    of a quantized input (the runners quantize)."""
    inputs, _ = io_details(tflite)
    return [TensorInfo(t.name, tuple(t.shape[1:]), _data_dtype(t)) for t in inputs]


def _data_dtype(tensor: Any) -> str:
    """The dtype of data for an input: integers (token ids) as they are, numbers else float."""
    integer = np.issubdtype(np.dtype(tensor.dtype), np.integer)
    return tensor.dtype if integer and not tensor.is_quantized else "float32"
