"""A conversion job: written by the caller, carried out by the worker process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import _lambdas, _strategies, _tfmot
from keras_tflite._calibration import Calibration
from keras_tflite._quantization import configure
from keras_tflite._specs import TensorInfo, framework_of

# The traced graph must reproduce the model before it is converted (the RNN bridge swaps kernels).
_TRACE_TOLERANCE = 1e-4
_TRACE_CHECK_SAMPLES = 4


def write(
    job_dir: Path,
    model: Any,
    inputs: list[TensorInfo],
    calibration: Calibration,
    *,
    quantization: str,
    batch_size: int,
    model_file: Path | None = None,
    weights: list[np.ndarray] | None = None,
    validation: dict[str, np.ndarray] | None = None,
    reference: list[np.ndarray] | None = None,
    niceness: int = 0,
    layer_errors: bool = False,
) -> None:
    """Writes everything the worker needs; the caller's model is only read.

    `model_file` reuses a file `save_model` wrote earlier (its architecture), `weights` then replaces
    its weights (a training snapshot), and `validation` asks the worker to judge the result;
    `reference` holds the float outputs on it when the model trains on another backend than
    TensorFlow (the worker rebuilds it on TensorFlow, so it cannot compute them itself).
    """
    framework = framework_of(model)
    if model_file is None:
        model_file = save_model(model, job_dir)
    else:
        os.link(model_file, job_dir / model_file.name)
    np.savez(job_dir / "calibration.npz", **calibration.arrays)
    if weights is not None:
        np.savez(job_dir / "weights.npz", *weights)
    if validation is not None:
        np.savez(job_dir / "validation.npz", **validation)
    if reference is not None:
        np.savez(job_dir / "reference.npz", *reference)
    job = {
        "framework": framework,
        "model_file": model_file.name,
        "inputs": [i.to_json() for i in inputs],
        "quantization": quantization,
        "batch_size": batch_size,
        "imports": sorted(_custom_modules(model)),
        "sys_path": [p for p in sys.path if p],
        "optimizations": _tfmot.optimizations(model),
        "lambda_globals": _lambdas.environment(model),
        "niceness": niceness,
        "layer_errors": layer_errors,
    }
    (job_dir / "job.json").write_text(json.dumps(job, indent=2))


def save_model(model: Any, directory: Path) -> Path:
    """Saves the model for the worker: `.keras`, or `.h5` for tfmot's wrappers (the `.keras`
    format drops variables of tfmot's QuantizeLayer; measured)."""
    if not _tfmot.optimizations(model):
        path = directory / "model.keras"
        model.save(path)
        return path
    from tf_keras.src.saving.legacy import hdf5_format

    # Not `model.save`: before saving, it builds a not-yet-trained model's compiled metrics
    # with its outputs as targets, so "accuracy" turns into categorical accuracy for the whole
    # fit (measured: sparse labels scored 0.147 instead of 0.120).
    path = directory / "model.h5"
    hdf5_format.save_model_to_hdf5(model, str(path), include_optimizer=False)
    return path


def _custom_modules(model: Any) -> set[str]:
    """Modules defining the model's own classes, imported by the worker so Keras can find them."""
    from keras_tflite._rnn import _walk

    modules = set()
    for layer in _walk(model):
        module = type(layer).__module__
        if not module.startswith(("keras.", "tf_keras.")) and module != "__main__":
            modules.add(module)
    return modules


def load_model(job_dir: Path, job: dict[str, Any]) -> Any:
    if "source" in job:  # `keras-tflite convert`: the user's file, loaded only here
        from keras_tflite import _sources

        return _sources.load(job["source"])
    with _tfmot.load_scope(job["optimizations"]):
        return _load_model(job_dir, job)


def _load_model(job_dir: Path, job: dict[str, Any]) -> Any:
    import importlib

    for path in job["sys_path"]:
        if path not in sys.path:
            sys.path.append(path)
    for module in job["imports"]:
        importlib.import_module(module)
    functions = _lambdas.install(job.get("lambda_globals") or {}, job["framework"])
    path = str(job_dir / job["model_file"])
    if job["framework"] == "tf_keras":
        import tf_keras

        model = tf_keras.models.load_model(
            path, custom_objects=functions, compile=False, safe_mode=False
        )
        return _with_weights(model, job_dir)
    import keras

    model = keras.saving.load_model(
        path, custom_objects=functions, compile=False, safe_mode=False
    )
    return _with_weights(model, job_dir)


def _with_weights(model: Any, job_dir: Path) -> Any:
    weights_path = job_dir / "weights.npz"
    if weights_path.exists():
        with np.load(weights_path) as stored:
            model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
    return model


def describe(model: Any) -> dict[str, Any]:
    """The loaded model's framework, inputs and outputs, for the caller to prepare data."""
    from keras_tflite._specs import input_infos, output_names

    framework = framework_of(model)
    if framework == "graph":
        return {"framework": framework, **model.describe()}
    inputs = input_infos(model)
    if inputs is None:
        raise ValueError("Expected a model that declares its inputs. Received: a subclassed model.")
    count = len(model.outputs) if getattr(model, "outputs", None) else 1
    return {
        "framework": framework,
        "inputs": [i.to_json() for i in inputs],
        "outputs": output_names(model, count),
    }


def deployable(model: Any, job: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The model as it deploys (pruning wrappers stripped), and facts about it for the caller."""
    if _tfmot.PRUNED not in job["optimizations"]:
        return model, {}
    sparsity = _tfmot.apply_masks(model)
    return _tfmot.strip_pruning(model), {"sparsity": sparsity}


def judge(model: Any, tflite: bytes, job_dir: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Runs float, LiteRT and TFLite Micro on the validation inputs; writes `judged.npz`.

    Returns:
        What is not an array: TFLite Micro's arena bytes, or why TFLite Micro could not run it.
    """
    from keras_tflite._micro import MicroModel
    from keras_tflite._runtime import TFLiteModel

    inputs = [TensorInfo.from_json(i) for i in job["inputs"]]
    with np.load(job_dir / "validation.npz") as stored:
        arrays = [stored[i.name] for i in inputs]
    rebuilt = _flat(model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0))
    report: dict[str, Any] = {}
    expected = rebuilt
    if (job_dir / "reference.npz").exists():  # the training backend's own outputs
        with np.load(job_dir / "reference.npz") as stored:
            expected = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        report["rebuild_max_abs_diff"] = max(
            float(np.max(np.abs(a - b))) for a, b in zip(rebuilt, expected)
        )
    outputs = {f"float_{i}": a for i, a in enumerate(expected)}
    named = {i.name: a for i, a in zip(inputs, arrays)}
    litert, micro = TFLiteModel(tflite), None
    try:
        micro = MicroModel(tflite)
    except RuntimeError as error:  # an op TFLite Micro lacks: reported, not fatal
        report["micro_error"] = f"{error}: {_worker_last_messages(job_dir)}"
    chunks: dict[str, list[list[np.ndarray]]] = {"litert": [], "micro": []}
    count = len(arrays[0])
    size = max(_JUDGE_CHUNK, -(-count // 20))
    for start in range(0, count, size):  # in chunks, reporting progress
        part = {name: a[start : start + size] for name, a in named.items()}
        chunks["litert"].append(_flat(litert.predict(part)))
        if micro is not None:
            try:
                chunks["micro"].append(_flat(micro.predict(part)))
            except RuntimeError as error:
                report["micro_error"] = f"{error}: {_worker_last_messages(job_dir)}"
                micro = None
        progress(job_dir, "comparing", min(start + size, count), count)
    order = _paired_outputs(litert, _output_names_of(model, len(expected)))
    for runtime, parts in chunks.items():
        if parts and (runtime == "litert" or micro is not None):
            joined = [np.concatenate(pieces) for pieces in zip(*parts)]
            for i, position in enumerate(order):
                outputs[f"{runtime}_{i}"] = joined[position]
    if micro is not None:
        report["arena_bytes"] = micro.arena_bytes
    np.savez(job_dir / "judged.npz", **outputs)
    return report


_JUDGE_CHUNK = 16


def _output_names_of(model: Any, count: int) -> list[str]:
    from keras_tflite._specs import output_names

    return output_names(model, count)


def _paired_outputs(runner: Any, names: list[str]) -> list[int]:
    """For each float output, the position of the runtime output that computes it. A file
    keras-tflite converted is in the model's order; another (`keras-tflite compare`) is paired
    by output name, else by the converter's numbering ('Identity', 'Identity_1', ...)."""
    from keras_tflite._flatbuffer import display_name
    from keras_tflite._inspect import trailing_number

    positions = list(range(len(runner.outputs)))
    if runner.in_model_order:
        return positions
    raw = [display_name(t.name) for t in runner.outputs]
    if sorted(raw) == sorted(names):
        return [raw.index(n) for n in names]
    return sorted(positions, key=lambda p: trailing_number(runner.outputs[p].name))


def progress(job_dir: Path, stage: str, done: int, total: int) -> None:
    """Tells the caller how far a long step got (the CLI draws it as a bar)."""
    from keras_tflite._worker import _emit

    _emit(job_dir, {"progress": {"stage": stage, "done": done, "total": total}})


def _worker_last_messages(job_dir: Path) -> str:
    from keras_tflite._worker import last_messages

    return last_messages(job_dir / "worker.log", count=2)


def skip_reason(name: str, model: Any) -> str | None:
    strategy = _strategies.STRATEGIES[name]
    return _strategies.framework_skip_reason(strategy, framework_of(model)) or strategy.skip_reason(
        model
    )


def convert_with(name: str, model: Any, job_dir: Path, job: dict[str, Any]) -> bytes:
    """The converted flatbuffer, its inputs and outputs in the model's order and names."""
    from keras_tflite._flatbuffer import with_model_io
    from keras_tflite._specs import output_names

    converter, _ = _configured_converter(name, model, job_dir, job)
    with _strategies.quiet_tensorflow():
        tflite = converter.convert()
    inputs = [i["name"] for i in job["inputs"]]
    return with_model_io(tflite, inputs, output_names(model, _output_count(tflite)))


def _output_count(tflite: bytes) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return schema.Model.GetRootAs(tflite, 0).Subgraphs(0).OutputsLength()


def _configured_converter(name: str, model: Any, job_dir: Path, job: dict[str, Any]):
    """The strategy's converter, configured for the job's quantization; and the calibration batches."""
    strategy = _strategies.STRATEGIES[name]
    inputs = [TensorInfo.from_json(i) for i in job["inputs"]]
    batch_size = job["batch_size"]
    with np.load(job_dir / "calibration.npz") as stored:
        arrays = {info.name: stored[info.name] for info in inputs}
    batches = list(_batches(arrays, batch_size))

    def check(traced) -> None:
        _check_trace(traced, model, inputs, batches[:_TRACE_CHECK_SAMPLES])

    converter = strategy.build(model, inputs, batch_size, check)

    def representative_dataset():  # batches keyed by input name: signatures may reorder inputs
        every = max(1, len(batches) // 20)
        for done, batch in enumerate(batches, 1):
            if getattr(model, "positional_calibration", False):
                yield [batch[i.name] for i in inputs]
            else:
                yield batch
            if done % every == 0 or done == len(batches):
                progress(job_dir, "calibrating", done, len(batches))

    learned = _tfmot.QAT in job["optimizations"]  # quantization-aware training set the ranges
    configure(converter, job["quantization"], None if learned else representative_dataset)
    return converter, batches


LAYER_ERROR_ROWS = 10
_LAYER_ERROR_BATCHES = 64


def layer_errors(name: str, model: Any, job_dir: Path, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-layer int8 error (TFLite's QuantizationDebugger), the largest first.

    Each row: the layer's output tensor, its RMSE and max abs error against the float layer,
    and that RMSE relative to the layer's own float spread (so layers compare fairly).
    """
    import tensorflow as tf

    converter, batches = _configured_converter(name, model, job_dir, job)
    inputs = [TensorInfo.from_json(i) for i in job["inputs"]]

    def debug_dataset():  # the debugger feeds inputs by position
        for batch in batches[:_LAYER_ERROR_BATCHES]:
            yield [batch[i.name] for i in inputs]

    with _strategies.quiet_tensorflow():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=debug_dataset
        )
        debugger.run()
    rows = []
    for tensor, stats in debugger.layer_statistics.items():
        rmse = float(np.sqrt(stats["mean_squared_error"]))
        rows.append(
            {
                "layer": _layer_name(tensor),
                "rmse": rmse,
                "max_abs_error": float(stats["max_abs_error"]),
                "mean_error": float(stats["mean_error"]),
            }
        )
    return sorted(rows, key=lambda r: r["rmse"], reverse=True)[:LAYER_ERROR_ROWS]


def _layer_name(tensor: str) -> str:
    """'NumericVerify/functional_1/dense_1/MatMul21:22' -> 'functional_1/dense_1/MatMul21'."""
    return tensor.removeprefix("NumericVerify/").rsplit(":", 1)[0]


def _batches(arrays: dict[str, np.ndarray], batch_size: int):
    count = len(next(iter(arrays.values())))
    usable = max(count - count % batch_size, batch_size)
    order = np.arange(usable) % count
    for start in range(0, usable, batch_size):
        rows = order[start : start + batch_size]
        yield {name: a[rows] for name, a in arrays.items()}


def _check_trace(traced, model, inputs: list[TensorInfo], batches) -> None:
    for batch in batches:
        args = [batch[i.name] for i in inputs]
        got = _flat(traced(*args))
        expected = _flat(model(args[0] if len(args) == 1 else args, training=False))
        for g, e in zip(got, expected):
            diff = float(np.max(np.abs(g - e)))
            if diff > _TRACE_TOLERANCE * (1.0 + float(np.max(np.abs(e)))):
                raise ValueError(
                    f"the traced graph does not reproduce the model (max abs difference {diff:.3g})"
                )


def _flat(outputs: Any) -> list[np.ndarray]:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]
