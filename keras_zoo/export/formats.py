"""ONNX and LiteRT exports: the `serving_default` function converted, checked by its own runtime.

The converters are the ones Keras's own ``model.export(format="onnx" | "litert")`` uses: tf2onnx
(``tf2onnx.convert.from_function``) and the TFLite converter over a SavedModel. Keras's exports
convert ``model.call``; these convert the serving signature instead, so an ONNX or LiteRT file takes
the same input (uint8 images at the model's size, or a generator's noise) and returns the same named
outputs as the SavedModel's ``serving_default``.

LiteRT files use TFLite's built-in operators only (no Flex delegate), so they run on the stock
interpreter of a phone; a model that needs other operators is refused with the converter's reason.
A version directory holds ``model.onnx`` or ``model.tflite``, ``keras_zoo.json`` (task, input
contract, outputs, class names, the check's tolerance) and ``class_names.txt``.
"""

from __future__ import annotations

import json
import os

import numpy as np

FORMATS = {"saved_model": None, "onnx": "model.onnx", "litert": "model.tflite"}
METADATA_FILE = "keras_zoo.json"
CLASS_NAMES_FILE = "class_names.txt"

# A converted graph may fuse and reorder float operations (and LiteRT's XNNPACK kernels sum in
# another order): outputs must agree with Keras to this fraction of their largest magnitude.
REL_TOLERANCE = 1e-3


class ConversionError(ValueError):
    """The model cannot be converted to the requested format (the reason is in the message)."""


def check_format(format: str) -> str:
    """`format` when it is supported and its converter is installed, else ValueError naming what is."""
    if format not in FORMATS:
        raise ValueError(f"format {format!r} is not supported; accepted: {sorted(FORMATS)}")
    if format == "onnx":
        _require("tf2onnx", "onnx")
        _require("onnxruntime", "onnx")
    elif format == "litert":
        _require("ai_edge_litert", "litert")
    return format


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"format {extra!r} needs the {module!r} package: "
                          f"pip install \"keras_zoo[{extra}]\"") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for prefix in ("TF Select ops:", "Custom ops:"):
        named = [l[len(prefix):].strip() for l in lines if l.startswith(prefix)]
        if named:
            return (f"operators not in TFLite's built-in set: {named[0]} (they would need the Flex "
                    "delegate, which phones do not ship by default)")
    # The TFLite converter's useful line names the operators it could not convert.
    useful = [l for l in lines if "not supported" in l or "failed to legalize" in l.lower()
              or "Some ops" in l]
    return (useful or lines)[0][:400]


def convert(format: str, fn, specs, staged: str, saved_model_dir: str | None, name: str) -> str:
    """Write ``staged/model.onnx`` or ``staged/model.tflite`` from the serving function; return its path.

    `saved_model_dir` is a SavedModel holding the same function as ``serving_default`` (LiteRT
    converts from it, as Keras does).
    """
    import tensorflow as tf

    path = os.path.join(staged, FORMATS[format])
    try:
        if format == "onnx":
            import tf2onnx
            from keras.src.export.tf2onnx_lib import patch_tf2onnx  # Keras's numpy-2 fix for tf2onnx

            patch_tf2onnx()
            function = tf.function(fn, input_signature=specs)
            proto, _ = tf2onnx.convert.from_function(function, specs, output_path=path)
            # tf2onnx logs the TensorFlow operators it cannot convert and keeps them in the graph.
            unknown = _unknown_onnx_ops(proto)
            if unknown:
                raise ConversionError(f"{name} cannot be exported as onnx: operators with no ONNX "
                                      f"conversion: {', '.join(unknown)}")
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                                 signature_keys=["serving_default"])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            with open(path, "wb") as f:
                f.write(converter.convert())
    except ConversionError:
        raise
    except Exception as err:  # the converters raise many kinds; the reason is what matters
        raise ConversionError(f"{name} cannot be exported as {format}: {_first_line(err)}") from err
    return path


def _unknown_onnx_ops(proto) -> list:
    import onnx

    def nodes(graph):
        for node in graph.node:
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from nodes(attr.g)

    return sorted({n.op_type for n in nodes(proto.graph) if not onnx.defs.has(n.op_type, n.domain or "")})


# --------------------------------------------------------------------------- runtimes


class Runner:
    """An ONNX or LiteRT export loaded in its own runtime: ``runner(inputs=array)`` -> dict of arrays.

    Inputs are checked against the contract in ``keras_zoo.json`` first (LiteRT would resize a wrong
    shape silently), so a wrong dtype or shape is refused with the expected one named.

    Attributes:
        path: the model file. metadata: its ``keras_zoo.json`` (task, contract, class names ...).
        format: ``"onnx"`` or ``"litert"``.
    """

    def __init__(self, path: str, metadata: dict):
        self.path = path
        self.metadata = metadata
        self.format = "onnx" if path.endswith(".onnx") else "litert"
        if self.format == "onnx":
            ort = _require("onnxruntime", "onnx")
            self._session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self._outputs = [o.name for o in self._session.get_outputs()]
        else:
            interpreter = _require("ai_edge_litert.interpreter", "litert")
            self._interpreter = interpreter.Interpreter(model_path=path)
            self._runner = self._interpreter.get_signature_runner("serving_default")

    @property
    def contract(self) -> list:
        recorded = (self.metadata.get("inputs") or {}).get("serving_default") or []
        return recorded or self._runtime_contract()

    def _runtime_contract(self) -> list:
        """The inputs the file itself declares (dtype, shape; None = any), for a file without
        ``keras_zoo.json``: inputs are checked either way."""
        rows = []
        if self.format == "onnx":
            for spec in self._session.get_inputs():
                dtype = spec.type[len("tensor("):-1] if spec.type.startswith("tensor(") else spec.type
                dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
                shape = [d if isinstance(d, int) else None for d in spec.shape]
                rows.append({"name": spec.name, "dtype": dtype, "shape": shape})
        else:
            for name, detail in self._runner.get_input_details().items():
                dims = detail.get("shape_signature", detail["shape"])
                rows.append({"name": name, "dtype": np.dtype(detail["dtype"]).name,
                             "shape": [int(d) if d >= 0 else None for d in dims]})
        for row in rows:
            row["description"] = f"{row['dtype']} of shape {tuple(row['shape'])} (None: any)"
        return rows

    def __call__(self, **inputs) -> dict:
        from keras_zoo.export.contract import check_inputs

        inputs = {k: np.asarray(v) for k, v in inputs.items()}
        if self.contract:
            check_inputs(self.contract, inputs, f"{os.path.basename(self.path)} serving_default")
        if self.format == "onnx":
            return dict(zip(self._outputs, self._session.run(None, inputs)))
        return {k: np.asarray(v) for k, v in self._runner(**inputs).items()}


def model_file(path: str) -> str | None:
    """The ``.onnx``/``.tflite`` file of `path`: the file itself, a version directory holding one, or
    a model directory (its highest version). None when `path` is none of these."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path if path.endswith((".onnx", ".tflite")) else None
    if not os.path.isdir(path):
        return None
    for file in (FORMATS["onnx"], FORMATS["litert"]):
        if os.path.isfile(os.path.join(path, file)):
            return os.path.join(path, file)
    versions = sorted((d for d in os.listdir(path) if d.isdigit()), key=int)
    return model_file(os.path.join(path, versions[-1])) if versions else None


def load(path: str, *, trust: bool = False) -> Runner:
    """Load an ONNX or LiteRT export (file, version directory or model directory) as a `Runner`.

    The file is checked first (`keras_zoo.export.portable.check_file`): every file of its folder
    must match the sha256 its ``keras_zoo.json`` records unless ``trust=True``, and custom operators
    or external data outside the folder are refused whatever ``trust`` says.
    """
    from keras_zoo.export import portable

    file = model_file(path)
    if file is None:
        raise FileNotFoundError(f"no model.onnx or model.tflite at {os.fspath(path)!r}")
    return Runner(file, portable.check_file(file, trust=trust))


def verify(path: str, fn, probe: dict, name: str) -> float:
    """Run `probe` through the file's runtime and through the Keras function; raise if any output
    differs by more than REL_TOLERANCE of its scale, or if an integer output differs where the
    float outputs do not tie. Returns the largest relative difference seen and the output names."""
    import tensorflow as tf

    from keras_zoo.export.errors import ExportVerificationError

    expected = {k: np.asarray(v) for k, v in fn(*[tf.constant(v) for v in probe.values()]).items()}
    got = Runner(path, {})(**probe)
    fmt = "onnx" if path.endswith(".onnx") else "litert"
    if set(got) != set(expected):
        raise ExportVerificationError(f"{name} {fmt} export has outputs {sorted(got)}, expected {sorted(expected)}")
    worst = 0.0
    for key, want in expected.items():
        have = np.asarray(got[key])
        if have.shape != want.shape:
            raise ExportVerificationError(f"{name} {fmt} export's {key!r} has shape {have.shape}, "
                                          f"expected {want.shape}")
        if np.issubdtype(want.dtype, np.floating):
            scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-12)
            diff = float(np.max(np.abs(have.astype(np.float64) - want))) / scale if want.size else 0.0
            worst = max(worst, diff)
            if diff > REL_TOLERANCE:
                raise ExportVerificationError(
                    f"{name} {fmt} export differs from the Keras model in {key!r}: max |diff| is "
                    f"{diff:.3g} of the outputs' scale (tolerance {REL_TOLERANCE:g})")
        elif not np.array_equal(have, want):
            probs = expected.get("probabilities")
            tied = probs is not None and probs.shape[:-1] == want.shape and np.all(
                np.abs(np.take_along_axis(probs, have[..., None], -1)
                       - np.take_along_axis(probs, want[..., None], -1))
                <= REL_TOLERANCE * max(float(np.max(probs)), 1e-12))
            if not tied:
                raise ExportVerificationError(f"{name} {fmt} export's {key!r} differs from the Keras model's")
    return worst, sorted(expected)


def write_sidecars(staged: str, metadata: dict, class_names) -> None:
    """Write ``class_names.txt`` then ``keras_zoo.json``, which records the sha256 of every other
    file of the version (checked by `load`, see `keras_zoo.export.portable`)."""
    from keras_zoo._io import atomic_write_text
    from keras_zoo.export import portable

    if class_names:
        atomic_write_text(os.path.join(staged, CLASS_NAMES_FILE), "\n".join(map(str, class_names)) + "\n")
    metadata = {**metadata, "files": portable.record_files(staged)}
    atomic_write_text(os.path.join(staged, METADATA_FILE), json.dumps(metadata, indent=2) + "\n")
