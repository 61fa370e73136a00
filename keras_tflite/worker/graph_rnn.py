"""Recurrent loops in frozen graphs, rebuilt in forms that convert to int8, same weights.

`tf.compat.v1.nn.dynamic_rnn` over an `LSTMCell`/`BasicLSTMCell`/`GRUCell` (and a graph-mode
tf_keras LSTM layer) freezes into a while loop whose batch comes from `tf.shape` and whose steps
go through tensor lists: the converter fails on it ("Lowering tensor list ops is failed"), and
unrolled it would be large. So does a TF2 SavedModel's LSTM or GRU layer (Keras 3 or tf_keras),
frozen: a functional While whose weights are constants passed in from outside its scope. Each
loop is found by its name scope (`<scope>/while`), its weights by their shapes (the constants in
the scope and those entering it), and what leaves the loop (the sequence, the final state) by
value: the loop and the rebuilt layer run on the same random input, and every tensor leaving the
loop must match one of the rebuilt layer's (`rnn_cells` holds the layouts and references). An
LSTM becomes tf_keras' fusable LSTM (one UNIDIRECTIONAL_SEQUENCE_LSTM op); a GRU, or an LSTM
with Keras 2's hard_sigmoid gates, which have no fused op, a compact loop whose every variable
changes each step (as the Keras bridge's, `rnn.py`). The rewritten graph is kept only when its
outputs equal the original's; otherwise the loop stays as it was, with a note saying which layer
and what to change.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from keras_tflite.specs import TensorInfo
from keras_tflite.worker import rnn, rnn_cells

_LOOP_OPS = ("While", "StatelessWhile", "Enter")
_CALLS = ("/PartitionedCall", "/StatefulPartitionedCall")  # inlined functions' scopes
_TOLERANCE = 1e-4  # float32 sums in another order: relative to the values' size
_CHECK_TOLERANCE = 1e-3  # the rebuilt graph's outputs against the original's, over their spread


@dataclasses.dataclass
class _Layer:
    """One recurrent layer in Keras' layout (LSTM gates i, f, c, o; GRU z, r, h with the reset
    before the recurrent kernel), and which loop tensors it replaces."""

    kind: str  # "lstm" | "gru"
    gate: str  # the gates' activation: "sigmoid" | "hard_sigmoid" (Keras 2 layers' default)
    sequence: str  # the loop's input, batch-major
    steps: int
    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray  # a GRU's is [2, 3u] with reset_after (Keras 3's default): input, recurrent
    replaces: dict[str, str]  # loop tensor -> "sequence" | "h" | "c"
    backwards: bool = False  # reads the sequence last step first (Bidirectional's backward layer)

    @property
    def fused(self) -> bool:
        """An LSTM with sigmoid gates: the converter's fused op. Anything else: a compact loop."""
        return self.kind == "lstm" and self.gate == "sigmoid"


def rebuild_recurrent_loops(
    graph_def: Any,
    inputs: list[TensorInfo],
    outputs: list[str],
    samples: dict[str, np.ndarray] | None = None,
):
    """`graph_def` with each recognised LSTM or GRU loop replaced, and a note per loop left.

    Recognition and the final check run on random inputs at two scales and on `samples` (real
    inputs by name, such as calibration rows): a rewrite must hold on all of them.

    Returns:
        (graph_def, notes): the graph to convert (the original when nothing was replaced).
    """
    scopes = _loop_scopes(graph_def)
    if not scopes:
        return graph_def, []
    feeds = _feeds(graph_def, inputs, samples)
    notes, found = [], {}
    for scope in scopes:
        try:
            found[scope] = _recognise(graph_def, scope, outputs, feeds)
        except _NotRecognised as reason:
            notes.append(_note(scope, reason.kind, str(reason), reason.fix))
        except Exception as error:  # noqa: BLE001 - the graph converts as it is, or fails saying so
            first = (str(error).strip().splitlines() or [""])[0][:200]
            notes.append(_note(scope, None, f"{type(error).__name__}: {first}", _AS_KERAS))
    if not found:
        return graph_def, notes
    try:
        rebuilt = _rewrite(graph_def, found, outputs)
        kept = sorted(s for s in found if any(_in_scope(n.name, s) for n in rebuilt.node))
        if kept:
            notes.append(f"the loops {kept} stay loops: the graph still reads them")
            return graph_def, notes
        difference = max(_relative_difference(graph_def, rebuilt, outputs, f) for f in feeds)
    except Exception as error:  # noqa: BLE001 - as above
        notes.append(f"the loops {sorted(found)} stay loops: {type(error).__name__}: {error}")
        return graph_def, notes
    if difference > _CHECK_TOLERANCE:
        notes.append(
            f"the loops {sorted(found)} stay loops: rebuilt, the graph's outputs differ by "
            f"{difference:.2g} of their spread"
        )
        return graph_def, notes
    return rebuilt, notes


class _NotRecognised(Exception):
    """This loop is not one LSTM or GRU that can be rebuilt (the message says why); `kind`
    is what it looks like ("lstm", "gru"), when its weights tell, and `fix` what to change."""

    def __init__(self, reason: str, kind: str | None = None, fix: str | None = None):
        super().__init__(reason)
        self.kind, self.fix = kind, fix


# What to change when a loop stays a loop, which neither int8 TFLite nor TFLite Micro runs.
# Not unroll=True: an unrolled LSTM with relu gates converts (164 KB for 8 units x 24 steps)
# but its int8 outputs are noise (normalized RMSE 1.19 against float, measured).
_AS_KERAS = "save the model as .keras (keras-tflite then rebuilds the layer itself)"
_FIXES = {
    "lstm": "give it those activations (the fused op's) and retrain",
    "gru": "save the model as .keras (keras-tflite then builds the loop from the layer itself)",
}
_TARGETS = {"lstm": "TFLite's fused LSTM op", "gru": "a compact loop TFLite Micro runs"}


def _note(scope: str, kind: str | None, reason: str, fix: str | None) -> str:
    """Why the loop of `scope` stays a loop and what to do, in one line: which layer, which
    fix."""
    kind = kind or _kind_named(scope)
    label = {"lstm": "LSTM", "gru": "GRU"}.get(kind or "", "recurrent")
    target = _TARGETS.get(kind or "", "ops TFLite Micro runs")
    fix = fix or _FIXES.get(kind or "", _AS_KERAS)
    layer = f"the {label} layer '{_layer_name(scope)}'"
    return f"{layer} could not be rebuilt as {target} ({reason}); {fix}"


def _layer_name(scope: str) -> str:
    """`functional_1/lstm_1` of `StatefulPartitionedCall/StatefulPartitionedCall/functional_1/
    lstm_1/`: the layer's own scope, without the function calls around it."""
    parts = [p for p in scope.strip("/").split("/") if f"/{p}" not in _CALLS]
    return "/".join(parts) or scope


def _kind_named(scope: str) -> str | None:
    name = _layer_name(scope).rpartition("/")[2].lower()
    return "lstm" if "lstm" in name else "gru" if "gru" in name else None


def _loop_scopes(graph_def: Any) -> list[str]:
    """Name scopes (`rnn/`) that hold a while loop, outermost first. A loop inside an inlined
    function call (`lstm/PartitionedCall/while`, tf_keras' LSTM and GRU) belongs to the layer
    around the call, which makes the loop's initial state."""
    scopes = set()
    for node in graph_def.node:
        if node.op in _LOOP_OPS and "/while" in node.name:
            scope = node.name.split("/while")[0]
            while scope.endswith(_CALLS):
                scope = scope.rpartition("/")[0]
            scopes.add(scope + "/")
    return sorted(scopes, key=len)


def _feeds(graph_def: Any, inputs: list[TensorInfo], samples: dict | None) -> list[dict]:
    """Inputs to compare on: random at two scales (saturated and linear gates), then real rows;
    each of the placeholders' own batch when it is fixed."""
    nodes = {n.name: n for n in graph_def.node}
    feeds = []
    for seed, scale in ((0, 1.0), (1, 0.1)):
        rng = np.random.default_rng(seed)
        feed = {}
        for info in inputs:
            shape = (_batch(nodes.get(info.name)) or 3, *info.shape)
            if np.dtype(info.dtype).kind == "f":
                feed[f"{info.name}:0"] = (rng.normal(0, scale, shape)).astype(info.dtype)
            else:
                feed[f"{info.name}:0"] = np.zeros(shape, info.dtype)
        feeds.append(feed)
    if samples and all(i.name in samples for i in inputs):
        feeds.append(
            {
                f"{i.name}:0": np.asarray(samples[i.name][: _batch(nodes.get(i.name)) or 8])
                for i in inputs
            }
        )
    return feeds


def _batch(placeholder: Any) -> int | None:
    """A placeholder's fixed batch size, or None when it is open."""
    if placeholder is None or "shape" not in placeholder.attr:
        return None
    dims = placeholder.attr["shape"].shape.dim
    return int(dims[0].size) if dims and dims[0].size > 0 else None


def _in_scope(name: str, scope: str) -> bool:
    """Whether node `name` belongs to the loop of `scope`, including the pass-through nodes
    that inlining a function leaves around its body (`Func/<scope>while/body/...`)."""
    return name.startswith(scope) or name.startswith(f"Func/{scope}")


def _in_any(name: str, scopes) -> bool:
    return any(_in_scope(name, scope) for scope in scopes)


def _tensor(name: str) -> str:
    node, _, index = name.lstrip("^").partition(":")
    return f"{node}:{index or 0}"


def _recognise(graph_def: Any, scope: str, outputs: list[str], feeds: list[dict]) -> _Layer:
    sequence, leaving, weights = _boundary(graph_def, scope, outputs, feeds)
    runs = []  # (x, {loop tensor: value}) per feed
    for feed in feeds:
        values = _run(graph_def, [sequence, *leaving], feed)
        runs.append((values[0], dict(zip(leaving, values[1:]))))
    x = runs[0][0]
    if x.ndim != 3:
        raise _NotRecognised(f"its input has shape {x.shape}, not (batch, time, features)")
    matches = _matching_layers(runs, weights, sequence, _scalars(graph_def, scope))
    if len({(m.kind, m.gate, m.backwards) for m, _ in matches}) > 1:
        raise _NotRecognised(
            "its gates saturate on every input tried: which activation it uses is unknown",
            matches[0][0].kind,
            f"pass calibration samples that do not saturate them, or {_AS_KERAS}",
        )
    if not matches:
        raise _NotRecognised(
            "its activations are not activation='tanh', recurrent_activation='sigmoid', or it "
            "has peepholes, a projection or cell clipping",
            _kind_of_weights(weights),
        )
    layer, h = matches[0]
    if layer.fused and "c" in layer.replaces.values():
        raise _NotRecognised(
            "the model reads its final cell state c, which the fused op does not output",
            "lstm",
            "read the layer's output h instead of its cell state",
        )
    if not layer.fused:  # without a sequence to keep, the loop needs no buffer
        layer.replaces = _last_steps(graph_def, layer.replaces, feeds[0], h)
    return layer


def _boundary(graph_def: Any, scope: str, outputs: list[str], feeds: list[dict]):
    """The loop's input sequence, the tensors leaving it (sorted), and its weights: the
    constants inside it and those it reads from outside (a frozen TF2 function's)."""
    from tensorflow.python.framework import tensor_util

    inside = {n.name for n in graph_def.node if _in_scope(n.name, scope)}
    entering, leaving, weights = set(), set(), []
    for node in graph_def.node:
        for name in node.input:
            if name.startswith("^"):
                continue
            source = _tensor(name).split(":")[0]
            if node.name in inside and source not in inside:
                entering.add(_tensor(name))
            elif node.name not in inside and source in inside and not _training(node.name):
                leaving.add(_tensor(name))
        if node.name in inside and node.op == "Const":
            weights.append(tensor_util.MakeNdarray(node.attr["value"].tensor))
    leaving |= {f"{o}:0" for o in outputs if o in inside}
    fed = _fed(graph_def, {name.split(":")[0] for name in feeds[0]})
    constants = sorted(n for n in entering if n.split(":")[0] not in fed)
    # Not loop machinery: constants, and the accumulators training hands a forward loop.
    entering = {n for n in entering if n.split(":")[0] in fed and not _training(n)}
    if len(entering) != 1:
        raise _NotRecognised(
            f"it reads {len(entering)} tensors from the model, not one input sequence (an "
            "initial_state, a mask or sequence lengths)",
            None,
            "call the layer on the sequence alone, without initial_state or mask",
        )
    weights = _unique(
        w
        for w in [*weights, *_constant_values(graph_def, constants, feeds[0])]
        if w.dtype == np.float32 and w.ndim in (1, 2) and w.size > 1
    )
    return next(iter(entering)), sorted(leaving), weights


def _constant_values(graph_def: Any, names: list[str], feed: dict) -> list[np.ndarray]:
    """The values of the float tensors among `names`, which depend on no input."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    tensors = [graph.get_tensor_by_name(n) for n in names]
    tensors = [t for t in tensors if t.dtype == tf.float32 and t.shape.rank in (1, 2)]
    if not tensors:
        return []
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(tensors, feed)  # a constant may wait for an input (control edge)


def _unique(arrays) -> list[np.ndarray]:
    """`arrays` without repeats (a constant read inside a loop and passed into it as well)."""
    found: list[np.ndarray] = []
    for array in arrays:
        if not any(a.shape == array.shape and np.array_equal(a, array) for a in found):
            found.append(array)
    return found


def _matching_layers(runs, weights, sequence: str, forget_biases: list[float]) -> list:
    """Every (layer, its final h) whose reference gives what leaves the loop on every run."""
    x = runs[0][0]
    candidates = list(rnn_cells.layouts(weights, x.shape[-1], forget_biases))
    matches = []
    for (kind, kernel, recurrent, bias), gate, backwards in itertools.product(
        candidates, rnn_cells.GATES, (False, True)
    ):
        references = [
            rnn_cells.REFERENCES[kind](
                x[:, ::-1] if backwards else x, kernel, recurrent, bias, rnn_cells.GATES[gate]
            )
            for x, _ in runs
        ]
        found = [_match(loop, reference) for (_, loop), reference in zip(runs, references)]
        if found[0] is not None and all(f == found[0] for f in found):
            layer = _Layer(
                kind, gate, sequence, x.shape[1], kernel, recurrent, bias, found[0], backwards
            )
            matches.append((layer, references[0]["h"]))
    return matches


def _kind_of_weights(weights: list[np.ndarray]) -> str | None:
    """The kind ("lstm", "gru") a recurrent kernel's shape tells ([u, 4u] or [u, 3u])."""
    for w in weights:
        if w.ndim == 2 and w.shape[1] in (4 * w.shape[0], 3 * w.shape[0]):
            return "lstm" if w.shape[1] == 4 * w.shape[0] else "gru"
    return None


def _last_steps(graph_def: Any, replaces: dict, feed: dict, h: np.ndarray) -> dict[str, str]:
    """`replaces` with a sequence whose readers all take its last step (`outputs[:, -1]`)
    replaced by those readers' outputs, as the final h."""
    result = dict(replaces)
    for name, role in replaces.items():
        if role != "sequence":
            continue
        readers = [
            f"{n.name}:0"
            for n in graph_def.node
            if any(_tensor(i) == name for i in n.input if not i.startswith("^"))
        ]
        values = _run(graph_def, readers, feed) if readers else []
        if readers and all(
            v.shape == h.shape and np.allclose(v, h, atol=_TOLERANCE) for v in values
        ):
            del result[name]
            result |= dict.fromkeys(readers, "h")
    return result


def _training(name: str) -> bool:
    """A gradient node: training's accumulators, which a frozen training graph's loop keeps."""
    return name.startswith("gradients/")


def _fed(graph_def: Any, placeholders: set[str]) -> set[str]:
    """The nodes whose values depend on the placeholders (the rest are constants, even when
    they wait for an input: a frozen TF2 function's inputs wait for all of them)."""
    consumers: dict[str, list[str]] = {}
    for node in graph_def.node:
        for name in node.input:
            if not name.startswith("^"):
                consumers.setdefault(_tensor(name).split(":")[0], []).append(node.name)
    found, stack = set(placeholders), list(placeholders)
    while stack:
        for name in consumers.get(stack.pop(), []):
            if name not in found:
                found.add(name)
                stack.append(name)
    return found


def _scalars(graph_def: Any, scope: str) -> list[float]:
    """forget_bias candidates: 1.0 (both TF1 cells' default), 0.0, and the loop's float scalars."""
    from tensorflow.python.framework import tensor_util

    found = [1.0, 0.0]
    bodies = [f.node_def for f in graph_def.library.function if "while" in f.signature.name]
    nodes = [n for n in graph_def.node if n.name.startswith(scope)]
    for node in [*nodes, *(n for body in bodies for n in body)]:
        if node.op == "Const" and node.attr["value"].tensor.dtype == 1:  # DT_FLOAT
            value = tensor_util.MakeNdarray(node.attr["value"].tensor)
            if value.size == 1 and float(value) not in found and len(found) < 24:
                found.append(float(value))
    return found


def _match(loop: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict | None:
    """Which rebuilt tensor each loop tensor is, when every one is one."""
    replaces = {}
    for name, value in loop.items():
        for role, expected in reference.items():
            if value.shape == expected.shape and np.allclose(value, expected, atol=_TOLERANCE):
                replaces[name] = role
                break
        else:
            return None
    return replaces


def _run(graph_def: Any, fetches: list[str], feed: dict) -> list[np.ndarray]:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(fetches, feed)


def _rewrite(graph_def: Any, found: dict[str, _Layer], outputs: list[str]) -> Any:
    """The graph with each loop's consumers reading its rebuilt layer instead, loops pruned."""
    import tensorflow as tf
    from tensorflow.python.framework import graph_util_impl

    graph = tf.Graph()
    renamed = {}
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        for n, (scope, layer) in enumerate(sorted(found.items())):
            x = graph.get_tensor_by_name(layer.sequence)
            with tf.name_scope(f"keras_tflite_{layer.kind}_{n}"):
                x = tf.reverse(x, [1]) if layer.backwards else x
                if layer.fused:
                    barrier = _meets_concatenation(graph_def, set(layer.replaces))
                    built = _fused(x, layer, barrier)
                else:
                    built = _compact_loop(x, layer)
            renamed |= {loop: built[role].name for loop, role in layer.replaces.items()}
    rewritten = graph.as_graph_def()
    for node in rewritten.node:
        for k, name in enumerate(node.input):
            if not name.startswith("^") and _tensor(name) in renamed:
                node.input[k] = renamed[_tensor(name)]
        if node.op == "NoOp":  # a TF2 function's "every stateful op ran" gathers the loops too
            loops = [i for i in node.input if i.startswith("^") and _in_any(i[1:], found)]
            for name in loops:
                node.input.remove(name)
    kept = set(outputs)
    for output in outputs:  # an output inside a loop's scope becomes an Identity of its twin
        tensor = f"{output}:0"
        if tensor in renamed:
            node = next(n for n in rewritten.node if n.name == output)
            node.Clear()
            node.name, node.op = output, "Identity"
            node.input.append(renamed[tensor])
            node.attr["T"].type = 1
    return graph_util_impl.extract_sub_graph(rewritten, sorted(kept))


def _meets_concatenation(graph_def: Any, leaving: set[str]) -> bool:
    """Whether what leaves the loop flows into a concatenation (see `rnn.scale_barrier`); its
    shape does not (a next loop packs its batch size into its zero state)."""
    consumers: dict[str, list[Any]] = {}
    for node in graph_def.node:
        if node.op in ("Shape", "Size", "Rank"):
            continue
        for name in node.input:
            if not name.startswith("^"):
                consumers.setdefault(_tensor(name).split(":")[0], []).append(node)
    seen, stack = set(), [name.split(":")[0] for name in leaving]
    while stack:
        for node in consumers.get(stack.pop(), []):
            if node.op in ("ConcatV2", "Pack"):
                return True
            if node.name not in seen:
                seen.add(node.name)
                stack.append(node.name)
    return False


def _fused(x: Any, lstm: _Layer, barrier: bool) -> dict[str, Any]:
    """tf_keras' fusable LSTM on `x` (batch-major), batch taken from `x` as the loop's was:
    its sequence, and its final h."""
    import tensorflow as tf

    units = lstm.recurrent.shape[0]
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], units]))
    weights = (tf.constant(lstm.kernel), tf.constant(lstm.recurrent), tf.constant(lstm.bias))
    _, sequence, _ = rnn.fusable_lstm(x, (zeros, zeros), weights, return_sequences=True)
    # The final h is the sequence's last step: the fused op has no state outputs, and a
    # function whose states are read is not fused.
    if barrier:
        sequence = rnn.scale_barrier(sequence)
    return {"sequence": tf.identity(sequence), "h": tf.identity(sequence[:, -1, :])}


def _compact_loop(x: Any, layer: _Layer) -> dict[str, Any]:
    """The layer as a while loop over time whose every variable changes each step (the input
    rows rotate, the sequence buffer shifts: a loop-invariant tensor crashes the int8
    calibrator), as the Keras bridge's GRU (`rnn.py`)."""
    import tensorflow as tf

    units = layer.recurrent.shape[0]
    cell = rnn_cells.Cell(layer)
    count = 1 if layer.kind == "gru" else 2  # (h,) or (h, c)
    keep_sequence = "sequence" in layer.replaces.values()

    def body(t, rows, *rest):
        states = cell(rows[0], rest[:count])
        looped = [t + 1, tf.concat([rows[1:], rows[:1]], 0), *states]
        if keep_sequence:
            looped.append(tf.concat([rest[count][1:], states[0][None]], 0))
        return looped

    rows = tf.transpose(x, [1, 0, 2])  # [time, batch, features]
    zeros = tf.zeros(tf.stack([tf.shape(x)[0], units]))
    start = [tf.constant(0), rows, *[zeros] * count]
    if keep_sequence:  # a buffer in the state's range (zeros would be kept as float32)
        start.append(tf.tanh(tf.einsum("tbf,fu->tbu", rows, cell.kernel[:, :units])))
    steps = layer.steps
    ended = tf.while_loop(lambda t, *_: t < steps, body, start, maximum_iterations=steps)
    built = {role: tf.identity(ended[2 + k]) for k, role in enumerate(("h", "c")[:count])}
    if keep_sequence:
        built["sequence"] = tf.transpose(ended[-1], [1, 0, 2])
    return built


def _relative_difference(original, rebuilt, outputs, feed) -> float:
    """The largest output difference over the outputs' spread (or size, when they are flat)."""
    fetches = [f"{o}:0" for o in outputs]
    before, after = _run(original, fetches, feed), _run(rebuilt, fetches, feed)
    return max(
        float(np.max(np.abs(a - b)))
        / max(float(np.std(a)), 1e-3 * (1.0 + float(np.max(np.abs(a)))))
        for a, b in zip(before, after)
    )
