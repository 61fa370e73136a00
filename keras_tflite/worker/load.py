"""The worker rebuilds the model it is asked to convert: from the caller's saved file and a
weights snapshot, or (the CLI) from a user's file in any TensorFlow format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from keras_tflite.specs import framework_of, input_infos, output_names
from keras_tflite.worker import lambdas, protocol, tfmot
from keras_tflite.worker.protocol import Job


def rebuild(job_dir: Path, job: Job) -> Any:
    """The job's model: the caller's saved model, or (the CLI) the user's file, which is loaded
    only here. Weights come separately (`with_weights`): a worker rebuilds a model once."""
    if job.source is not None:
        from keras_tflite.worker import graphs

        return graphs.load(job.source)
    with tfmot.load_scope(job.optimizations):
        return _load_keras(job_dir, job)


def _load_keras(job_dir: Path, job: Job) -> Any:
    import importlib

    for path in job.sys_path:
        if path not in sys.path:
            sys.path.append(path)
    for module in job.imports:
        importlib.import_module(module)
    functions = lambdas.install(job.lambda_globals, job.framework)
    path = str(job_dir / job.model_file)
    if job.framework == "tf_keras":
        import tf_keras

        return tf_keras.models.load_model(
            path, custom_objects=functions, compile=False, safe_mode=False
        )
    import keras

    return keras.saving.load_model(path, custom_objects=functions, compile=False, safe_mode=False)


def with_weights(model: Any, job_dir: Path) -> Any:
    """`model` holding the job's weights snapshot, when the job has one."""
    weights = job_dir / protocol.WEIGHTS_FILE
    if weights.exists():
        model.set_weights(protocol.read_list(weights))
    return model


def describe(model: Any) -> dict[str, Any]:
    """The loaded model's framework, inputs and outputs, for the caller to prepare data."""
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


def deployable(model: Any, job: Job) -> tuple[Any, dict[str, Any]]:
    """The model as it deploys (pruning wrappers stripped), and facts about it for the caller."""
    if tfmot.PRUNED not in job.optimizations:
        return model, {}
    sparsity = tfmot.apply_masks(model)
    return tfmot.strip_pruning(model), {"sparsity": sparsity}
