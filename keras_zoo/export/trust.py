"""Which SavedModels keras_zoo agrees to run.

A SavedModel is a program: its graph may read or write files, or call back into Python. Two checks
stand between a directory on disk and `tf.saved_model.load`:

1. **Provenance.** `export_model` records the sha256 of every file of the export in its metadata
   (``assets.extra/keras_zoo.json``, key ``"files"``). `check_export` recomputes them; a SavedModel
   without that metadata, with a file changed, missing or added, is refused unless the caller says
   ``trust=True`` (CLI ``--trust``). The record detects tampering and exports from elsewhere; it is
   not a signature (anyone can write a matching record), hence the second check.
2. **Op deny-list.** Whether trusted or not, the graph and every function in its library are walked
   and any op that touches the file system, the network or the Python interpreter is refused with its
   name. Checkpoint ops (``SaveV2``, ``RestoreV2``...) are allowed only in the functions TensorFlow's
   own saver calls (those reachable from the ``saver_def``), never in the serving functions.
"""

from __future__ import annotations

import json
import os

from keras_zoo._io import sha256_of

METADATA_FILE = os.path.join("assets.extra", "keras_zoo.json")
MAX_METADATA_BYTES = 1 << 20          # the metadata is a few KB; anything large is not ours
MAX_GRAPH_BYTES = 1 << 30             # saved_model.pb (graph and functions; weights live in variables/)

# Ops that reach outside the tensor world: the file system, the network, the Python interpreter,
# debugger dumps and summary writers (which write files), readers and datasets that open paths.
DENIED_OPS = frozenset({
    # files
    "WriteFile", "ReadFile", "MatchingFiles", "DeleteFile", "ImmutableConst",
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
    "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
    "TFRecordReader", "TFRecordReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
    "IdentityReader", "IdentityReaderV2", "LMDBReader", "ReaderReadV2", "ReaderRead",
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset",
    "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
    "CacheDataset", "CacheDatasetV2", "SnapshotDataset", "SnapshotDatasetV2", "SaveDataset",
    "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
    # summaries and debugger dumps (both write files)
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter", "WriteSummary",
    "WriteScalarSummary", "WriteImageSummary", "WriteAudioSummary", "WriteHistogramSummary",
    "WriteRawProtoSummary", "WriteGraphSummary", "ImportEvent", "FlushSummaryWriter",
    "CloseSummaryWriter", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary", "DebugNumericSummaryV2",
    # Python callbacks
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    # network
    "Rpc", "TryRpc", "RpcCall", "RpcClient", "RpcServer", "RpcServerStart", "RpcServerRegister",
    "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4",
    "RegisterDataset", "RegisterDatasetV2",
})
DENIED_OPS = DENIED_OPS | {"DecodeProtoV2", "EncodeProto",  # descriptor_source may name a file
                           "LoadAndRemapMatrix", "GenerateVocabRemapping", "FileSystemSetConfiguration",
                           "RecordInput"}
# Fragments of op type names that mean files, readers, remote services or Python, for ops added to
# TensorFlow after this list was written (no op of a keras_zoo export contains one).
DENIED_FRAGMENTS = ("File", "Reader", "Snapshot", "Rpc", "Record", "Sql", "LMDB", "CSV", "DataService",
                    "PyFunc", "Debug")
# PrintV2 may print to "file://..."; only these streams are harmless.
PRINT_STREAMS = {"stderr", "stdout", "log(info)", "log(warning)", "log(error)"}
# Checkpoint ops write or read the paths they are given: fine in the saver's own functions.
CHECKPOINT_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
                            "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec"})


class UntrustedExportError(ValueError):
    """A SavedModel without valid keras_zoo metadata, loaded without ``trust=True``."""


class UnsafeExportError(ValueError):
    """A SavedModel whose graph contains an op on the deny-list (refused even when trusted)."""


def _files(root: str) -> list[str]:
    """Every file under `root` (relative, '/'-separated, sorted), the metadata file excepted."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if rel != METADATA_FILE.replace(os.sep, "/"):
                found.append(rel)
    return sorted(found)


def record_files(root: str) -> dict:
    """``{relative path: sha256}`` of every file of an export (for its metadata)."""
    return {rel: sha256_of(os.path.join(root, rel)) for rel in _files(root)}


def read_metadata(path: str) -> dict | None:
    """The export's metadata dict, or None when it is absent, too large or not a JSON object."""
    meta_path = os.path.join(path, METADATA_FILE)
    try:
        if os.path.getsize(meta_path) > MAX_METADATA_BYTES:
            return None
        with open(meta_path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def provenance_problem(path: str, metadata: dict | None) -> str | None:
    """Why the export's files do not match its record, or None when they all do."""
    if metadata is None:
        return f"it has no readable keras_zoo metadata ({METADATA_FILE})"
    recorded = metadata.get("files")
    if not isinstance(recorded, dict) or not recorded:
        return f"its metadata ({METADATA_FILE}) records no file checksums"
    links = [os.path.relpath(os.path.join(d, n), path) for d, dirs, names in os.walk(path)
             for n in dirs + names if os.path.islink(os.path.join(d, n))]
    if links:
        return f"it contains symbolic link(s) {sorted(links)[:3]}, which exports written by keras_zoo never do"
    present = _files(path)
    extra = sorted(set(present) - set(recorded))
    missing = sorted(set(recorded) - set(present))
    if missing:
        return f"file(s) {missing[:3]} recorded in its metadata are missing"
    if extra:
        return f"file(s) {extra[:3]} are not recorded in its metadata"
    for rel in present:
        if sha256_of(os.path.join(path, rel)) != recorded[rel]:
            return f"{rel} does not match the sha256 recorded at export time"
    return None


def _called_functions(node) -> list[str]:
    """Names of the functions a NodeDef refers to (``f=...``, lists of functions, ...)."""
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        if value.HasField("list"):
            names.extend(f.name for f in value.list.func)
    return names


def _denied(node) -> bool:
    """Whether a node's op is refused anywhere (checkpoint ops are judged by where they are)."""
    op = node.op
    if op in CHECKPOINT_OPS:
        return False
    if op == "PrintV2":
        stream = node.attr["output_stream"].s.decode("utf-8", "replace") if "output_stream" in node.attr else "stderr"
        return stream not in PRINT_STREAMS
    return op in DENIED_OPS or any(fragment in op for fragment in DENIED_FRAGMENTS)


def denied_ops(path: str) -> list[tuple[str, str]]:
    """``(op type, where)`` for every deny-listed op in the SavedModel's graphs and functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    size = os.path.getsize(pb)
    if size > MAX_GRAPH_BYTES:
        raise UnsafeExportError(f"refusing {pb!r}: {size} bytes, more than the {MAX_GRAPH_BYTES}-byte "
                                "limit for a graph (weights belong in variables/)")
    saved = saved_model_pb2.SavedModel()
    with open(pb, "rb") as f:
        try:
            saved.ParseFromString(f.read())
        except Exception as err:  # protobuf's DecodeError
            raise UnsafeExportError(f"refusing {pb!r}: not a readable SavedModel graph ({err})") from None
    found = []
    for meta_graph in saved.meta_graphs:
        graph = meta_graph.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        saver_nodes = {name.split(":")[0].lstrip("^") for name in (
            meta_graph.saver_def.save_tensor_name, meta_graph.saver_def.restore_op_name) if name}
        # Functions reachable from the saver's nodes: the only place checkpoint ops may live.
        saver_functions, stack = set(), [f for n in graph.node if n.name in saver_nodes
                                         for f in _called_functions(n)]
        while stack:
            name = stack.pop()
            if name in saver_functions or name not in functions:
                continue
            saver_functions.add(name)
            stack.extend(f for n in functions[name].node_def for f in _called_functions(n))
        for node in graph.node:
            if _denied(node) or node.op in CHECKPOINT_OPS:
                found.append((node.op, f"graph node {node.name!r}"))
        for name, function in functions.items():
            for node in function.node_def:
                if _denied(node) or (node.op in CHECKPOINT_OPS and name not in saver_functions):
                    found.append((node.op, f"function {name!r}"))
    return found


def check_export(path: str, trust: bool = False) -> dict:
    """Refuse an export keras_zoo should not run; return its metadata (``{}`` when it has none).

    Raises:
        UntrustedExportError: no valid metadata (missing, or a file differs from its sha256), and
            ``trust`` is False.
        UnsafeExportError: the graph contains a deny-listed op (whatever ``trust`` says).
    """
    path = os.fspath(path)
    metadata = read_metadata(path)
    problem = provenance_problem(path, metadata)
    if problem and not trust:
        raise UntrustedExportError(
            f"refusing to load the SavedModel at {path!r}: {problem}. keras_zoo runs only exports it "
            "wrote and that are unchanged since; a SavedModel is a program, so if you trust its author "
            "pass trust=True (CLI: --trust). Ops that touch files, the network or Python are refused "
            "even then.")
    denied = denied_ops(path)
    if denied:
        op, where = denied[0]
        more = f" (and {len(denied) - 1} more)" if len(denied) > 1 else ""
        raise UnsafeExportError(
            f"refusing to load the SavedModel at {path!r}: its graph contains the op {op!r} in {where}"
            f"{more}, which can reach the file system, the network or the Python interpreter. keras_zoo "
            "never runs such graphs, trusted or not.")
    return metadata or {}
