"""The model's own input and output order and names, written into the .tflite flatbuffer.

The converter orders a signature's inputs by name (measured: inputs `series`, `season` became
`season`, `series`) and names outputs `PartitionedCall:1`, ... So after every conversion the
main subgraph's input and output lists are put in the Keras model's order and their tensors
renamed to the model's names: `interpreter->input(i)` on a device is then the model's input i,
and every tool (LiteRT, TFLite Micro, `inspect`, firmware headers) sees one order and one name.
A small metadata entry records that the order is the model's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

METADATA_NAME = "keras_tflite_io"


def with_model_io(
    tflite: bytes,
    input_names: list[str],
    output_names: list[str],
    extra: dict[str, Any] | None = None,
) -> bytes:
    """`tflite` with its main subgraph's inputs and outputs in the model's order and names, and
    no stale bytes: the converter leaves data in buffers no tensor uses, and not the same data
    each time, so two conversions of one model would differ without this.

    When the converted tensors cannot be matched to the names, no order is claimed (and
    multi-input callers must feed inputs by name). `extra` goes into the same metadata entry
    (a streaming model's state pairs).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))
    _empty_unused_buffers(model)
    subgraph = model.subgraphs[0]
    signature = _main_signature(model)
    inputs = _match_inputs(subgraph, signature, input_names)
    outputs = _match_outputs(subgraph, signature, output_names)
    if inputs is not None and outputs is not None:
        _name_io(model, signature, inputs, outputs, input_names, output_names, extra or {})
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_shared_state_scales(tflite: bytes, pairs: list[list[str]]) -> bytes:
    """A streaming model whose each state input takes its next-state output's quantization, so
    the int8 state is fed back as it is: no second rounding per step. Kernels derive their
    rescaling from tensor scales when they are prepared, and both tensors hold the same state
    (calibrated apart, their scales differ by under 1%)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))
    subgraph = model.subgraphs[0]
    by_name = {_text(subgraph.tensors[i].name): i for i in [*subgraph.inputs, *subgraph.outputs]}
    for given, produced in pairs:
        source = subgraph.tensors[by_name[produced]].quantization
        target = subgraph.tensors[by_name[given]]
        if source is not None and source.scale is not None and target.quantization is not None:
            target.quantization.scale = np.array(source.scale, np.float32)
            target.quantization.zeroPoint = np.array(source.zeroPoint, np.int64)
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _empty_unused_buffers(model: Any) -> None:
    used = {t.buffer for s in model.subgraphs for t in (s.tensors or [])}
    used |= {m.buffer for m in (model.metadata or [])}
    for index, buffer in enumerate(model.buffers or []):
        if index not in used:
            buffer.data = None


def _name_io(model, signature, inputs, outputs, input_names, output_names, extra) -> None:
    subgraph = model.subgraphs[0]
    subgraph.inputs = np.array(inputs, np.int32)  # the schema's int vectors
    subgraph.outputs = np.array(outputs, np.int32)
    for index, name in [*zip(inputs, input_names), *zip(outputs, output_names)]:
        subgraph.tensors[index].name = name.encode()
    if signature is not None:
        signature.inputs = _signature_entries(signature.inputs, inputs, input_names)
        signature.outputs = _signature_entries(signature.outputs, outputs, output_names)
    _set_metadata(model, {"inputs": input_names, "outputs": output_names, **extra})


def model_io(tflite: bytes) -> dict[str, list[str]] | None:
    """The model's input and output names in order, when keras-tflite wrote them."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode())
    return None


def display_name(runtime_name: str) -> str:
    """'serving_default_series:0' -> 'series': the model's input name inside a runtime name."""
    name = re.sub(r":\d+$", "", runtime_name)
    return re.sub(r"^(serving_default|serve)_", "", name)


def _main_signature(model: Any) -> Any:
    signatures = [s for s in (model.signatureDefs or []) if s.subgraphIndex == 0]
    return signatures[0] if len(signatures) == 1 else None


def _match_inputs(subgraph: Any, signature: Any, names: list[str]) -> list[int] | None:
    """Tensor indices of the named inputs: by signature key, else by tensor name."""
    current = [int(i) for i in subgraph.inputs]
    if len(names) != len(current):
        return None
    by_key = {_text(e.name): e.tensorIndex for e in (signature.inputs if signature else [])}
    by_tensor = {display_name(_text(subgraph.tensors[i].name)): i for i in current}
    found = [by_key.get(n, by_tensor.get(n)) for n in names]
    if None in found or len(set(found)) != len(found):
        return current if len(current) == 1 else None
    return found


def _match_outputs(subgraph: Any, signature: Any, names: list[str]) -> list[int] | None:
    """Tensor indices of the outputs in model order: the signature keys `output_<i>` are the
    traced function's output positions; graphs converted without a signature keep node names."""
    current = [int(i) for i in subgraph.outputs]
    if len(names) != len(current):
        return None
    by_key = {_text(e.name): e.tensorIndex for e in (signature.outputs if signature else [])}
    positional = [by_key.get(f"output_{i}") for i in range(len(names))]
    if None not in positional:
        return positional
    by_tensor = {display_name(_text(subgraph.tensors[i].name)): i for i in current}
    found = [by_key.get(n, by_tensor.get(n)) for n in names]
    if None in found or len(set(found)) != len(found):
        return current if len(current) == 1 else None
    return found


def _signature_entries(entries: list[Any], indices: list[int], names: list[str]) -> list[Any]:
    by_index = {e.tensorIndex: e for e in entries}
    if set(by_index) != set(indices):
        return entries
    ordered = []
    for index, name in zip(indices, names):
        entry = by_index[index]
        entry.name = name.encode()
        ordered.append(entry)
    return ordered


def _set_metadata(model: Any, value: dict[str, Any]) -> None:
    from ai_edge_litert import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(value).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != METADATA_NAME]
    model.metadata.append(entry)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
