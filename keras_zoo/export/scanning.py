"""`scan(path)`: what a model file would run, and whether keras_zoo's loaders would run it.

The same checks the loaders make (`trust.check_export` for SavedModels, `portable.check_file` for
ONNX and LiteRT, `archive.check_archive_is_safe` for ``.keras``), reported in full instead of
stopping at the first refusal: every op type (layer class for ``.keras``) with its count and where
it occurs, whether it is allowed, unknown (runs only with ``trust=True``) or refused (never runs),
the provenance check, and a verdict.
"""

from __future__ import annotations

import os

from keras_zoo.export import archive, portable
from keras_zoo.export import trust as trust_model

VERDICTS = ("safe", "needs trust", "refused")


def _savedmodel_dir(path: str) -> str | None:
    if os.path.isfile(os.path.join(path, "saved_model.pb")) or any(
            os.path.lexists(os.path.join(path, n)) for n in trust_model.UNPARSED_GRAPH_FILES):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    return _savedmodel_dir(os.path.join(path, max(versions, key=int))) if versions else None


def scan(path, *, trust: bool = False) -> dict:
    """Scan a SavedModel directory, a ``.keras`` archive or an ``.onnx``/``.tflite`` file (or the
    export directory holding one) without running anything.

    Returns a dict: ``path`` (the file or version directory scanned), ``format``, ``ops`` (rows of
    ``op``, ``count``, ``where``, ``status`` in allowed/unknown/refused, ``reason``), ``provenance``
    (``{"checked": bool, "problem": str | None}``), ``problems`` (refusals not tied to one op) and
    ``verdict``: ``"safe"`` (loads as it is), ``"needs trust"`` (loads only with ``trust=True``) or
    ``"refused"`` (never loads). With ``trust=True`` the verdict is the one a trusted load gets.
    """
    from keras_zoo.export import formats

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"nothing to scan at {path!r}")
    report = {"path": path, "format": None, "ops": [], "provenance": {"checked": False, "problem": None},
              "problems": []}
    saved = _savedmodel_dir(path) if os.path.isdir(path) else None
    portable_file = None if saved else formats.model_file(path)
    try:
        if saved:
            report.update(path=saved, format="saved_model")
            report["ops"] = trust_model.inspect_ops(saved)
            problem = trust_model.provenance_problem(saved, trust_model.read_metadata(saved))
            report["provenance"] = {"checked": True, "problem": problem}
        elif portable_file:
            report.update(path=portable_file, format="onnx" if portable_file.endswith(".onnx") else "litert")
            report["ops"] = portable.file_ops(portable_file)
            folder = os.path.dirname(os.path.abspath(portable_file))
            problem = trust_model.provenance_problem(folder, trust_model.read_metadata(folder, portable.METADATA_FILE),
                                                     portable.METADATA_FILE)
            report["provenance"] = {"checked": True, "problem": problem}
        elif path.endswith(".keras") and os.path.isfile(path):
            report["format"] = "keras"
            config = archive.read_config(path)
            report["ops"] = _keras_layers(config)
            report["provenance"] = {"checked": False, "problem": None,
                                    "note": ".keras archives carry no record; they load in Keras's safe mode"}
        else:
            raise ValueError(f"{path!r} is not a SavedModel directory, a .keras archive or an .onnx/.tflite "
                             "file (or an export directory holding one)")
    except (trust_model.UnsafeExportError, archive.ArchiveBombError) as err:
        report["problems"].append(str(err))
    except ValueError as err:
        if report["format"] is None:
            raise
        report["problems"].append(str(err))
    statuses = {r["status"] for r in report["ops"]}
    if report["problems"] or "refused" in statuses:
        verdict = "refused"
    elif not trust and (report["provenance"]["problem"] or "unknown" in statuses):
        verdict = "needs trust"
    else:
        verdict = "safe"
    report["verdict"] = verdict
    return report


def _keras_layers(config) -> list[dict]:
    """Layer classes of a ``.keras`` config: those needing Python code are refused."""
    unsafe = {c for c, _ in archive.unsafe_layers(config)}
    rows = {}
    for node in archive.walk_config(config):
        name = node.get("class_name")
        if not isinstance(name, str) or not isinstance(node.get("config"), dict):
            continue
        row = rows.setdefault(name, {"op": name, "count": 0, "where": [], "status": "allowed", "reason": ""})
        row["count"] += 1
        layer = node["config"].get("name")
        if layer and len(row["where"]) < 5:
            row["where"].append(f"layer {layer!r}")
        if name in unsafe:
            row.update(status="refused", reason="needs Python code to rebuild (Keras's safe mode refuses it)")
    return sorted(rows.values(), key=lambda r: (r["status"] != "refused", r["op"]))


def format_report(report: dict) -> str:
    """The scan as text: one line per op type, then provenance and verdict."""
    lines = [f"{report['path']} ({report['format']})"]
    width = max([len(r["op"]) for r in report["ops"]] + [2])
    for row in report["ops"]:
        where = ", ".join(row["where"][:2]) + (" ..." if len(row["where"]) > 2 else "")
        reason = f" ({row['reason']})" if row["reason"] else ""
        lines.append(f"  {row['status']:<8} {row['op']:<{width}} x{row['count']:<5} {where}{reason}")
    counts = {s: sum(1 for r in report["ops"] if r["status"] == s) for s in ("allowed", "unknown", "refused")}
    lines.append(f"op types: {counts['allowed']} allowed, {counts['unknown']} unknown, {counts['refused']} refused")
    prov = report["provenance"]
    if prov["checked"]:
        lines.append("provenance: " + (f"FAILED: {prov['problem']}" if prov["problem"] else
                                       "every file matches the sha256 keras_zoo recorded at export"))
    else:
        lines.append("provenance: " + prov.get("note", "not checked"))
    for problem in report["problems"]:
        lines.append(f"refused: {problem}")
    lines.append(f"verdict: {report['verdict']}")
    return "\n".join(lines)
