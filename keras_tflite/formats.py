"""Models saved in any TensorFlow format: which format a path holds, and what its Keras config
says, read from names and JSON only (nothing is deserialized). Loading runs in the conversion
worker (`worker.graphs`): SavedModels and TF1 graphs are programs, and loading one is running it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def detect(path: Path) -> str:
    """Which format `path` holds, from its name and neighbours only."""
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "saved_model"
        if (path / "checkpoint").exists():
            return "checkpoint"
        raise ValueError(
            f"Expected a SavedModel directory (with saved_model.pb) or a TF1 checkpoint directory "
            f"(with a 'checkpoint' file). Received: {str(path)!r}, which has neither."
        )
    if path.suffix == ".keras":
        return "keras"
    if path.suffix in (".h5", ".hdf5"):
        return "h5"
    if Path(f"{path}.meta").exists() or path.suffix == ".meta":
        return "checkpoint"
    if path.suffix == ".pb":
        return "frozen_graph"
    raise ValueError(
        "Expected a .keras or .h5 file, a SavedModel directory, a TF1 checkpoint (prefix or "
        f"directory, with its .meta graph) or a frozen .pb graph. Received: {str(path)!r}."
    )


def keras_config(path: Path, kind: str) -> dict[str, Any]:
    """The model's architecture as JSON, read without deserializing anything."""
    if kind == "keras":
        return json.loads(_member(path, "config.json"))
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise ValueError(f"Expected a whole model in {str(path)!r}. Received: a weights-only file.")
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def saved_by_keras_version(path: Path, kind: str) -> str:
    """The Keras version that wrote the file ("2.x": tf_keras; "3.x": Keras 3)."""
    if kind == "keras":
        return str(json.loads(_member(path, "metadata.json")).get("keras_version", "3"))
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", "2")
    return version if isinstance(version, str) else version.decode()


def _member(path: Path, name: str) -> bytes:
    """One file of a `.keras` archive (a zip), or a ValueError naming what is missing."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(name)
    except zipfile.BadZipFile:
        raise ValueError(
            f"Expected a .keras file (a zip archive). Received: {str(path)!r}."
        ) from None
    except KeyError:
        raise ValueError(
            f"Expected a .keras archive holding {name}, as Keras writes it. Received: "
            f"{str(path)!r} without it."
        ) from None


def lambda_layers(config: Any) -> list[str]:
    """Names of Lambda layers anywhere in a Keras config (their code would run on load)."""
    found = []
    if isinstance(config, dict):
        if config.get("class_name") == "Lambda":
            found.append(str((config.get("config") or {}).get("name", "lambda")))
        for value in config.values():
            found.extend(lambda_layers(value))
    elif isinstance(config, list):
        for value in config:
            found.extend(lambda_layers(value))
    return found


def keras_inputs(config: Any) -> list[tuple[str, tuple]] | None:
    """The inputs a Keras config declares, in the model's order: (name, per-sample shape, None
    for an open dimension). None when it does not say (a subclassed model, nested inputs)."""
    try:
        body = config["config"]
        declared = {
            layer["config"]["name"]: layer["config"]
            for layer in body["layers"]
            if layer["class_name"] == "InputLayer"
        }
        order = body.get("input_layers")
        if order is None:  # a Sequential model: its first layer
            names = list(declared)[:1]
        else:
            names = [order[0]] if isinstance(order[0], str) else [entry[0] for entry in order]
        found = []
        for name in names:
            layer = declared[name]
            shape = layer.get("batch_shape") or layer.get("batch_input_shape")
            found.append((name, tuple(shape[1:])))
        return found or None
    except (KeyError, TypeError, IndexError, AttributeError):
        return None
