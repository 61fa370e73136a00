"""A live TF1 session's model: its inputs and outputs in the graph, and the graph frozen with the
session's current variable values (what the training thread does at an export: milliseconds)."""

from __future__ import annotations

from typing import Any

from keras_tflite.specs import TensorInfo
from keras_tflite.worker.graphs import input_info, needed_placeholders, output_candidates


def resolve(graph: Any, inputs: Any, outputs: Any) -> tuple[list[TensorInfo], list[str]]:
    """The model's inputs (placeholders, with their per-sample shapes) and output node names.

    `inputs`/`outputs` are tensors, operations or names (a list, or one); without `outputs`, the
    graph's only output candidate; without `inputs`, the placeholders the outputs need.

    Raises:
        ValueError: for a name that matches no node, several or no output candidates, or an
            input whose shape is not known beyond the batch dimension.
    """
    known = {op.name for op in graph.get_operations()}
    output_names = _names(outputs, "outputs")
    if not output_names:
        candidates = output_candidates(graph)
        if len(candidates) != 1:
            raise ValueError(
                "Expected one output node, or outputs= naming them. Received a graph with "
                f"{len(candidates)} candidate outputs (nodes nothing but training ops consumes): "
                f"{candidates or 'none'}. Pass outputs=[tensor or name, ...]."
            )
        output_names = candidates
    _check_known(output_names, known, "outputs", output_candidates(graph))
    input_names = _names(inputs, "inputs") or needed_placeholders(
        graph.as_graph_def(), output_names
    )
    placeholders = [op.name for op in graph.get_operations() if op.type == "Placeholder"]
    _check_known(input_names, known, "inputs", placeholders)
    fix = "Give the placeholder a shape such as [None, 120, 3]."
    return [input_info(graph, name, {}, fix) for name in input_names], output_names


def freeze(session: Any, output_names: list[str]) -> bytes:
    """The graph the outputs need, every variable a constant of its current value."""
    from tensorflow.python.framework import convert_to_constants, graph_util_impl

    graph_def = session.graph.as_graph_def()  # reads only: no op is added to a training graph
    frozen = convert_to_constants.convert_variables_to_constants_from_session_graph(
        session, graph_def, output_names
    )
    return graph_util_impl.extract_sub_graph(frozen, output_names).SerializeToString()


def _names(given: Any, argument: str) -> list[str]:
    if given is None:
        return []
    items = given if isinstance(given, (list, tuple)) else [given]
    names = []
    for item in items:
        name = getattr(item, "name", item)
        if not isinstance(name, str):
            raise ValueError(
                f"Expected {argument} to be tensors, operations or names. Received: {item!r}."
            )
        names.append(name.split(":")[0])
    return names


def _check_known(names: list[str], known: set[str], argument: str, candidates: list[str]) -> None:
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"Expected {argument} to name nodes of the session's graph. Received unknown: "
            f"{missing}. Candidates: {candidates}."
        )
