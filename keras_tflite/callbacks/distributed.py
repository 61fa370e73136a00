"""The callback under distributed training: one writer (the chief), the same logs everywhere.

Covers tf.distribute strategies and Keras 3 on JAX across processes (`keras.distribution`).

Every worker runs every callback. Only the chief exports; the others stay inert, except that at
each epoch end all of them join one all-reduce that hands the chief's `tflite_*` logs to every
worker, so callbacks reading them (EarlyStopping on `tflite_val_loss`) decide alike everywhere.
The chief's own work runs off the training thread: inside `fit`'s strategy scope, any variable
it created (a metric's, a probe model's) would become a collective the other workers never join.
Weights are read on every worker at the same point (a read can be a collective, see
`local_copy`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

# The chief's logs travel as UTF-8 JSON in a fixed-size vector (the same shape on every worker).
_PAYLOAD_BYTES = 16_384


@dataclasses.dataclass(frozen=True)
class Role:
    """Where this process stands: whether it writes, and the strategy to share logs through."""

    writer: bool
    strategy: Any = None  # a tf.distribute strategy other than the default, or None
    multi_worker: bool = False


def chief_before_training() -> bool:
    """Whether this process will write, as known before any model exists: JAX's process index
    once `keras.distribution.initialize` ran; else TF_CONFIG's chief task (or worker 0)."""
    import sys

    keras = sys.modules.get("keras")
    if keras is not None and "jax" in sys.modules and keras.backend.backend() == "jax":
        jax = sys.modules["jax"]
        # Asking for the index before `keras.distribution.initialize` would start JAX's
        # backend, after which initializing the processes is refused.
        return not jax.distributed.is_initialized() or jax.process_index() == 0
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    cluster = config.get("cluster") or {}
    if not task:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def off_scope(role: Role, executor: Any, function: Any, *args: Any) -> Any:
    """Runs `function` outside `fit`'s strategy scope or JAX distribution (both per thread, so
    on `executor`'s thread): under them, a variable it created would be a collective only the
    chief joins."""
    if role.strategy is None and not role.multi_worker:
        return function(*args)
    return executor.submit(function, *args).result()


def role(model: Any) -> Role:
    jax_processes = _jax_processes(model)
    if jax_processes is not None:
        index, count = jax_processes
        return Role(writer=index == 0, multi_worker=count > 1)
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or _is_default(strategy):
        return Role(writer=True)
    extended = strategy.extended
    multi_worker = bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())
    return Role(
        writer=bool(extended.should_checkpoint), strategy=strategy, multi_worker=multi_worker
    )


def _jax_processes(model: Any) -> tuple[int, int] | None:
    """(this process's index, process count) for a Keras 3 model on JAX; None otherwise."""
    from keras_tflite.specs import framework_of

    if framework_of(model) != "keras":
        return None
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    return jax.process_index(), jax.process_count()


def _is_default(strategy: Any) -> bool:
    return type(strategy).__name__ in (
        "_DefaultDistributionStrategy",
        "DefaultDistributionStrategy",
    )


def share(role: Role, logs: dict[str, float]) -> dict[str, float]:
    """The writer's `logs` on every worker. Every worker must call this at the same point."""
    if not role.multi_worker:
        return logs
    payload = np.zeros(_PAYLOAD_BYTES, np.float32)
    if role.writer:
        encoded = json.dumps(_fitting(logs)).encode()
        payload[: len(encoded)] = np.frombuffer(encoded, np.uint8)
    total = _from_writer(role, payload)
    text = bytes(np.asarray(total).astype(np.uint8)).rstrip(b"\0").decode()
    return json.loads(text) if text else {}


def agree_prepared(role: Role, error: Exception | None) -> Exception | None:
    """Whether the chief could prepare, learned by every worker (all call this at train begin):
    the chief's own error, or on the others one saying the chief failed."""
    if not role.multi_worker:
        return error
    prepared = share(role, {"prepared": float(error is None)})
    if error is None and not prepared.get("prepared"):
        return RuntimeError(
            "TFLiteExportCallback could not prepare exports on the chief worker; its log has the "
            "reason."
        )
    return error


def _from_writer(role: Role, payload: np.ndarray) -> np.ndarray:
    if role.strategy is None:  # JAX processes
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.broadcast_one_to_all(payload))
    import tensorflow as tf

    sent = []

    def contribution(context):  # once per worker: its first local replica carries the payload
        if sent:
            return tf.zeros_like(payload)
        sent.append(context.replica_id_in_sync_group)
        return tf.constant(payload)

    values = role.strategy.experimental_distribute_values_from_function(contribution)
    return role.strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)


def local_copy(model: Any, weights: list[np.ndarray]) -> Any:
    """The model rebuilt from its config, outside any strategy, holding `weights`.

    Under MultiWorkerMirroredStrategy, reading a sync-on-read variable (BatchNormalization's
    moving statistics, the compiled metrics' totals) is an all-reduce across workers, and on
    JAX across processes a prediction is a computation on every process: so the chief never
    uses the live model alone; it measures, saves and (on JAX) predicts with this copy.
    Built off the training thread, it lives outside the strategy scope or JAX distribution.
    """
    from keras_tflite.specs import framework_of

    if framework_of(model) == "tf_keras":
        import tf_keras as framework
    else:
        import keras as framework
    copy = framework.models.clone_model(model)
    copy.set_weights(weights)
    return copy


def _fitting(logs: dict[str, float]) -> dict[str, float]:
    """The logs, with keys dropped from the end until their JSON fits the payload."""
    kept = {k: float(v) for k, v in logs.items()}
    while kept and len(json.dumps(kept).encode()) > _PAYLOAD_BYTES:
        kept.pop(next(reversed(kept)))
    return kept
