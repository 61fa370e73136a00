"""The worker loads a user's saved model: a Keras file (by the Keras that wrote it), or a
SavedModel, TF1 checkpoint or frozen `.pb` as a frozen graph with named inputs and outputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from keras_tflite import formats
from keras_tflite.specs import TensorInfo
from keras_tflite.worker import graph_rnn, protocol

# Ops that never carry a model's output: training, saving, initialization, variables, summaries.
_NOT_OUTPUT_OPS = {
    "NoOp", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "SaveV2", "RestoreV2",
    "MergeV2Checkpoints", "VarIsInitializedOp", "IsVariableInitialized", "VariableV2",
    "VarHandleOp", "ReadVariableOp", "Const", "Placeholder", "PlaceholderWithDefault",
    "ScalarSummary", "HistogramSummary", "MergeSummary", "Shape", "ShardedFilename",
    "StringJoin",
}  # fmt: skip
_NOT_OUTPUT_SCOPES = ("gradients/", "save/", "init", "report_uninitialized")


def load(source: dict[str, Any]) -> Any:
    """A Keras model (keras, h5) or a `GraphModel` (the TensorFlow graph formats)."""
    path, kind = Path(source["path"]), source["kind"]
    if kind in ("keras", "h5") and formats.saved_by_keras_version(path, kind).startswith("2."):
        import tf_keras

        if kind == "keras":
            return tf_keras.models.load_model(path, compile=False, safe_mode=not source["trust"])
        return tf_keras.models.load_model(path, compile=False)  # Lambdas were refused before
    if kind in ("keras", "h5"):
        import keras

        return keras.saving.load_model(path, compile=False, safe_mode=not source["trust"])
    if kind == "saved_model":
        return _saved_model(path, source)
    graph_def = _checkpoint_graph(path, source) if kind == "checkpoint" else _read_graph(path)
    return GraphModel.from_graph_def(graph_def, source)


class GraphModel:
    """A frozen TF graph with named inputs and outputs: predicts in a session, converts with the
    TF1 converter (the canonical path for frozen graphs)."""

    framework = "graph"
    positional_calibration = True  # the TF1 converter takes lists in input order

    def __init__(self, graph_def: Any, inputs: list[TensorInfo], outputs: list[str]):
        self.graph_def, self.infos, self.output_names = graph_def, inputs, outputs
        self.notes: list[str] = []  # why recurrent loops stay loops (with a failed conversion)

    @classmethod
    def from_graph_def(cls, graph_def: Any, source: dict[str, Any]) -> GraphModel:
        import tensorflow as tf

        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        outputs = source.get("outputs") or _only_candidate(graph)
        missing = [o for o in outputs if o not in {op.name for op in graph.get_operations()}]
        if missing:
            raise ValueError(
                f"Expected --outputs to name nodes of the graph. Received unknown: {missing}. "
                f"Candidates: {output_candidates(graph)}."
            )
        placeholders = needed_placeholders(graph_def, outputs)
        inputs = [
            input_info(graph, name, source.get("input_shapes") or {}) for name in placeholders
        ]
        return cls(graph_def, inputs, outputs)

    def describe(self) -> dict[str, Any]:
        return {"inputs": [i.to_json() for i in self.infos], "outputs": self.output_names}

    def predict(self, x: Any, verbose: int = 0) -> list[np.ndarray]:
        import tensorflow as tf

        arrays = x if isinstance(x, list) else [x]
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(self.graph_def, name="")
        fetches = [f"{o}:0" for o in self.output_names]
        results: list[list[np.ndarray]] = [[] for _ in fetches]
        with tf.compat.v1.Session(graph=graph) as session:
            for row in range(len(arrays[0])):  # one sample at a time: shapes may be fixed at 1
                feed = {f"{i.name}:0": a[row : row + 1] for i, a in zip(self.infos, arrays)}
                for out, value in zip(results, session.run(fetches, feed)):
                    out.append(value)
        return [np.concatenate(r) for r in results]

    def converter(self, batch_size: int, scratch: Path) -> Any:
        """The TF1 converter of the graph, its TF1 LSTM and GRU loops rebuilt (checked on
        random inputs and on the job's calibration samples). `scratch` is a folder inside the
        job's."""
        import tensorflow as tf

        calibration = scratch.parent / protocol.CALIBRATION_FILE
        samples = protocol.read_arrays(calibration) if calibration.exists() else None
        convertible, self.notes = graph_rnn.rebuild_recurrent_loops(
            self.graph_def, self.infos, self.output_names, samples
        )
        path = scratch / "frozen_graph.pb"
        path.write_bytes(convertible.SerializeToString())
        shapes = {i.name: [batch_size, *i.shape] for i in self.infos}
        return tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(path), [i.name for i in self.infos], self.output_names, shapes
        )


def output_candidates(graph: Any) -> list[str]:
    """Nodes that look like outputs: explicitly named top-level Identity nodes (the TF1 idiom
    `tf.identity(y, name="prediction")`) when there are any; else nodes not consumed (except by
    training ops) that are not a training, saver, initializer or variable op, nor a scalar
    (losses and metrics are)."""
    ops = graph.get_operations()
    training = {op.name for op in ops if _is_training(op)}
    consumed = {inp.op.name for op in ops if op.name not in training for inp in op.inputs} | {
        c.name for op in ops if op.name not in training for c in op.control_inputs
    }
    candidates, named = [], []
    for op in ops:
        if op.name in training or op.type in _NOT_OUTPUT_OPS or not op.outputs:
            continue
        top_identity = op.type == "Identity" and "/" not in op.name
        if (op.name not in consumed or top_identity) and op.outputs[0].shape.rank != 0:
            candidates.append(op.name)
            if top_identity:
                named.append(op.name)
    # A graph's own loose ends (a dynamic_rnn's final states, its zero state) are not outputs
    # when the author named some.
    return named or candidates


def _is_training(op: Any) -> bool:
    return (
        op.name.startswith(_NOT_OUTPUT_SCOPES)
        or op.type.startswith(("Apply", "ResourceApply"))
        or op.type in ("NoOp", "SaveV2", "RestoreV2")
    )


def _only_candidate(graph: Any) -> list[str]:
    candidates = output_candidates(graph)
    if len(candidates) == 1:
        return candidates
    raise ValueError(
        "Expected one output node, or --outputs naming them. Received a graph with "
        f"{len(candidates)} candidate outputs (nodes nothing but training ops consumes): "
        f"{candidates or 'none'}. Pass --outputs NAME[,NAME...]."
    )


def needed_placeholders(graph_def: Any, outputs: list[str]) -> list[str]:
    """The placeholders the outputs depend on, in graph order."""
    nodes = {n.name: n for n in graph_def.node}
    needed, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name in needed or name not in nodes:
            continue
        needed.add(name)
        stack.extend(i.split(":")[0].lstrip("^") for i in nodes[name].input)
    return [n.name for n in graph_def.node if n.op == "Placeholder" and n.name in needed]


def input_info(
    graph: Any, name: str, overrides: dict[str, list[int]], fix: str | None = None
) -> TensorInfo:
    """Placeholder `name`'s per-sample shape and dtype; `fix` tells how to give a missing
    dimension (by default, the CLI's --input-shape)."""
    tensor = graph.get_tensor_by_name(f"{name}:0")
    if name in overrides:
        return TensorInfo(name, tuple(overrides[name][1:]), tensor.dtype.name)
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is None or None in dims[1:]:
        raise ValueError(
            f"Expected a known shape for input {name!r} beyond the batch dimension. Received: "
            f"{dims}. {fix or f'Pass --input-shape {name}:1,...(every dimension).'}"
        )
    return TensorInfo(name, tuple(dims[1:]), tensor.dtype.name)


def _read_graph(path: Path) -> Any:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def _checkpoint_graph(path: Path, source: dict[str, Any]) -> Any:
    """The checkpoint's meta graph with its variables restored and frozen into constants."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    prefix = tf.train.latest_checkpoint(str(path)) if path.is_dir() else str(path)
    prefix = prefix.removesuffix(".meta") if prefix else prefix
    if not prefix or not Path(f"{prefix}.meta").exists():
        raise ValueError(f"Expected a checkpoint with a .meta graph. Received: {str(path)!r}.")
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as session:
        saver = tf1.train.import_meta_graph(f"{prefix}.meta", clear_devices=True)
        saver.restore(session, prefix)
        graph_def = graph.as_graph_def()
        outputs = source.get("outputs") or output_candidates(graph)
        if not outputs:
            _only_candidate(graph)  # raises, naming what it found
        return tf1.graph_util.convert_variables_to_constants(session, graph_def, outputs)


def _saved_model(path: Path, source: dict[str, Any]) -> Any:
    """A SavedModel's serving signature, frozen to a graph at a fixed batch, its inputs and
    outputs named by the signature's keys."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    loaded = tf.saved_model.load(str(path))
    signatures = dict(loaded.signatures)
    if not signatures:
        raise ValueError(
            f"Expected a SavedModel with a serving signature. Received: {str(path)!r}."
        )
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    function = signatures[key]
    overrides = source.get("input_shapes") or {}
    specs = {}
    for name, spec in function.structured_input_signature[1].items():
        dims = overrides.get(name) or [1, *spec.shape.as_list()[1:]]
        if None in dims:
            raise ValueError(
                f"Expected a known shape for input {name!r} beyond the batch dimension. Received: "
                f"{spec.shape.as_list()}. Pass --input-shape {name}:1,...(every dimension)."
            )
        specs[name] = tf.TensorSpec(dims, spec.dtype, name=name)
    fixed = tf.function(lambda **kw: function(**kw)).get_concrete_function(**specs)
    # Frozen as the TFLite converter freezes: loops stay functional While ops (their bodies in
    # the graph's library), the form `graph_rnn` rebuilds; lowered, a Keras loop is ~3x the nodes.
    frozen = convert_variables_to_constants_v2(fixed, lower_control_flow=False)
    graph_def = frozen.graph.as_graph_def()
    # A signature returns a dict; flattened (as the outputs are), its keys come in sorted order.
    keys = tf.nest.flatten({k: k for k in fixed.structured_outputs})
    outputs = _renamed(graph_def, [t.op.name for t in frozen.outputs], keys)
    source = {**source, "outputs": source.get("outputs") or outputs}
    return GraphModel.from_graph_def(graph_def, source)


_OP_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")


def _renamed(graph_def: Any, nodes: list[str], names: list[str]) -> list[str]:
    """`nodes` renamed in place to `names` (the frozen function's `Identity` outputs to the
    signature's `output_0`), each where the name is a free, valid node name; the new names."""
    taken = {node.name for node in graph_def.node}
    renames: dict[str, str] = {}
    for node, name in zip(nodes, names):
        if name not in taken and node not in renames and _OP_NAME.fullmatch(name):
            renames[node] = name
            taken.add(name)
    for node in graph_def.node:
        node.name = renames.get(node.name, node.name)
        for k, name in enumerate(node.input):
            control, source = ("^", name[1:]) if name.startswith("^") else ("", name)
            op, colon, index = source.partition(":")
            if op in renames:
                node.input[k] = f"{control}{renames[op]}{colon}{index}"
    return [renames.get(node, node) for node in nodes]
