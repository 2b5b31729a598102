"""Checks on ONNX and LiteRT exports before their runtime opens them (`formats.load` calls `check_file`).

- **Provenance**: ``keras_zoo.json`` beside the file records the sha256 of every file of the version
  (key ``"files"``); a changed, added or missing file, or no record at all, is refused unless
  ``trust=True`` (CLI ``--trust``), as for SavedModels (`keras_zoo.export.trust`).
- **Operators**: an ONNX node in a domain other than the standard ones (``ai.onnx``,
  ``ai.onnx.ml``, and onnxruntime's own ``com.microsoft`` contrib ops, which quantised models use),
  a tensor whose external data lies outside the model's folder, or a LiteRT custom operator
  (``CUSTOM``, which includes the Flex delegate's TensorFlow ops) is refused whatever ``trust`` says.
  Built-in operators (quantize and dequantize included) are allowed.
"""

from __future__ import annotations

import os
from collections import Counter

from keras_zoo.export import trust as trust_model

METADATA_FILE = "keras_zoo.json"
MAX_MODEL_BYTES = 2 << 30   # a protobuf cannot exceed 2 GiB; LiteRT files of the zoo are MBs
STANDARD_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


class UnsafeModelFileError(trust_model.UnsafeExportError):
    """An ONNX or LiteRT file with operators or data the package never runs."""


def record_files(folder: str) -> dict:
    """``{relative path: sha256}`` of every file of a version folder except ``keras_zoo.json``."""
    return {rel: sha256 for rel, sha256 in trust_model.record_files(folder).items() if rel != METADATA_FILE}


def _size_check(path: str) -> None:
    size = os.path.getsize(path)
    if size > MAX_MODEL_BYTES:
        raise UnsafeModelFileError(f"refusing {path!r}: {size} bytes, more than the {MAX_MODEL_BYTES}-byte limit")


def onnx_ops(path: str) -> list[dict]:
    """Op rows (``op``, ``count``, ``where``, ``status``, ``reason``) of an ONNX file, its external
    data references included (read without loading that data)."""
    import onnx

    _size_check(path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and onnx's own
        raise UnsafeModelFileError(f"refusing {path!r}: not a readable ONNX model ({str(err)[:200]})") from None
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    counts, where, rows = Counter(), {}, []

    def graphs(graph, name):
        yield graph, name
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from graphs(attr.g, f"{name}/{node.name or node.op_type}")
                for sub in attr.graphs:
                    yield from graphs(sub, f"{name}/{node.name or node.op_type}")

    outside = []
    for graph, name in graphs(model.graph, "graph"):
        for node in graph.node:
            key = (node.domain or "", node.op_type)
            counts[key] += 1
            where.setdefault(key, []).append(f"{name} node {node.name or node.op_type!r}")
        for tensor in list(graph.initializer) + [a.t for n in graph.node for a in n.attribute if a.HasField("t")]:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                location = {e.key: e.value for e in tensor.external_data}.get("location", "")
                target = os.path.realpath(os.path.join(folder, location))
                if os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
                    outside.append((tensor.name, location))
    for function in model.functions:  # model-local functions define ops in their own domain
        for node in function.node:
            key = (node.domain or "", node.op_type)
            counts[key] += 1
            where.setdefault(key, []).append(f"function {function.name!r}")
    local = {(f.domain, f.name) for f in model.functions}
    for (domain, op), count in sorted(counts.items()):
        label = f"{domain}::{op}" if domain else op
        if domain in STANDARD_ONNX_DOMAINS or (domain, op) in local:
            status, reason = "allowed", ""
        else:
            status, reason = "refused", f"custom-op domain {domain!r}, which onnxruntime runs only with a custom-op library"
        rows.append({"op": label, "count": count, "where": where[(domain, op)][:5], "status": status,
                     "reason": reason})
    for name, location in outside:
        rows.append({"op": "external data", "count": 1, "where": [f"tensor {name!r} -> {location!r}"],
                     "status": "refused", "reason": "external data outside the model's folder"})
    return rows


def litert_ops(path: str) -> list[dict]:
    """Op rows of a LiteRT (``.tflite``) file, read from its flatbuffer without an interpreter."""
    from ai_edge_litert import schema_py_generated as schema

    _size_check(path)
    with open(path, "rb") as f:
        data = f.read()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    try:
        if not schema.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAs(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            codes.append(("custom", custom.decode("utf-8", "replace")) if builtin == schema.BuiltinOperator.CUSTOM
                         else ("builtin", names.get(builtin, f"BUILTIN_{builtin}")))
        counts, where = Counter(), {}
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            label = (subgraph.Name() or b"").decode("utf-8", "replace") or str(s)
            for o in range(subgraph.OperatorsLength()):
                index = subgraph.Operators(o).OpcodeIndex()
                key = codes[index] if index < len(codes) else ("bad", f"opcode index {index}")
                counts[key] += 1
                where.setdefault(key, []).append(f"subgraph {label!r}")
    except Exception as err:  # flatbuffers raise IndexError, struct.error ... on a damaged file
        raise UnsafeModelFileError(f"refusing {path!r}: not a readable LiteRT model ({str(err)[:200]})") from None
    rows = []
    for (kind, op), count in sorted(counts.items()):
        if kind == "builtin":
            status, reason = "allowed", ""
        elif kind == "custom":
            status, reason = "refused", "a custom operator (the Flex delegate's TensorFlow ops among them)"
        else:
            status, reason = "refused", "an operator the file does not define"
        rows.append({"op": op if kind == "builtin" else f"{kind}:{op}", "count": count,
                     "where": sorted(set(where[(kind, op)]))[:5], "status": status, "reason": reason})
    return rows


def file_ops(path: str) -> list[dict]:
    """The operators of an ``.onnx`` or ``.tflite`` file (see `onnx_ops` and `litert_ops`)."""
    return onnx_ops(path) if path.endswith(".onnx") else litert_ops(path)


def check_file(path: str, trust: bool = False) -> dict:
    """Refuse an ONNX/LiteRT file keras_zoo should not run; return its ``keras_zoo.json`` (``{}``
    when it has none and ``trust`` is set)."""
    path = os.fspath(path)
    refused = [r for r in file_ops(path) if r["status"] == "refused"]
    if refused:
        first = refused[0]
        raise UnsafeModelFileError(
            f"refusing to load {path!r}: {first['op']} in {first['where'][0]} is {first['reason']}; "
            "keras_zoo never runs such files, trusted or not (`keras-zoo scan` lists every operator)")
    folder = os.path.dirname(os.path.abspath(path))
    metadata = trust_model.read_metadata(folder, METADATA_FILE)
    problem = trust_model.provenance_problem(folder, metadata, METADATA_FILE)
    if problem and not trust:
        raise trust_model.UntrustedExportError(
            f"refusing to load {path!r}: {problem}. keras_zoo runs only exports it wrote and that are "
            "unchanged since; if you trust the file's author pass trust=True (CLI: --trust).")
    return metadata or {}
