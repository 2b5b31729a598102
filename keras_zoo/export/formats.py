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

Quantised files (``export_model(..., quantize=...)``: LiteRT dynamic, float16 or full-integer int8;
ONNX static int8 QDQ) are made from the checked float file and checked by top-1 agreement with the
Keras model on held-out images instead of the float tolerance (the section at the end of this module).
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
    """An ONNX or LiteRT export loaded in its own runtime: ``runner(inputs=array)`` -> dict of arrays
    (a classifier with class names also returns ``labels``, as the SavedModel does).

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
            out = dict(zip(self._outputs, self._session.run(None, inputs)))
        else:
            out = {k: np.asarray(v) for k, v in self._runner(**inputs).items()}
        names = self.metadata.get("class_names") or []
        if self.metadata.get("task") == "classification" and names and np.ndim(out.get("class_ids")) == 1:
            # The SavedModel's `labels` output (strings are not in TFLite's built-in set, so the
            # file returns ids and the names travel beside it in keras_zoo.json).
            out["labels"] = np.asarray(names, dtype=str)[out["class_ids"]]
        return out


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


# --------------------------------------------------------------------------- quantisation
#
# A quantised file is written from its float twin (converted and checked above), then checked in its
# own way: quantisation moves probabilities by more than the float tolerance by design, so what must
# hold is that it picks the same class as the Keras model on held-out images (`check_agreement`).

QUANTIZE_MODES = {"litert": ("dynamic", "float16", "int8"), "onnx": ("int8",)}
# Modes that calibrate activation ranges on real images (the others need no data).
CALIBRATED = ("int8",)
# The quantised file must pick the Keras model's class (per image; per pixel for segmenters) on at
# least this fraction of the held-out images it is checked on.
MIN_AGREEMENT = 0.98
CALIBRATION_IMAGES = 300  # from the train split: a few hundred cover the activation ranges
CHECK_IMAGES = 1000       # from the held-out split, at most
PROBE_IMAGES = 64         # random images when no data is given (modes that need no calibration)
QUANTIZED_TASKS = ("classification", "segmentation")  # tasks with class ids to agree on

_METHODS = {
    ("litert", "dynamic"): "TFLite post-training dynamic range (int8 weights, float activations)",
    ("litert", "float16"): "TFLite post-training float16 (float16 weights)",
    ("litert", "int8"): "TFLite post-training full integer (int8 weights, per-channel or per-tensor "
                        "scales, and int8 activations; representative data set)",
    ("onnx", "int8"): "ONNX Runtime quantize_static, QDQ (uint8 weights and activations, per-tensor, "
                      "MinMax calibration)",
}


def check_quantize(format: str, quantize, task: str | None = None, data=None) -> str | None:
    """Validate a `quantize` request before anything is converted; returns it (None: float)."""
    if quantize is None:
        return None
    accepted = {f: list(m) for f, m in QUANTIZE_MODES.items()}
    if format not in QUANTIZE_MODES:
        raise ValueError(f"quantize={quantize!r} needs format 'litert' or 'onnx' (format {format!r} is "
                         f"exported in float only); accepted: {accepted}")
    if quantize not in QUANTIZE_MODES[format]:
        raise ValueError(f"quantize {quantize!r} is not supported for format {format!r}; accepted: "
                         f"{list(QUANTIZE_MODES[format])}")
    if task is not None and task not in QUANTIZED_TASKS:
        raise ValueError(f"quantize={quantize!r} needs a model with class ids to check the quantised file "
                         f"against (tasks {list(QUANTIZED_TASKS)}); a {task!r} model is exported in float")
    if quantize in CALIBRATED and data is None:
        raise ValueError(f"quantize={quantize!r} calibrates on real images: pass data= (an image folder, "
                         "a built-in name such as 'digits', arrays or `Splits`; `keras-zoo export "
                         "--data DIR`, which defaults to the run directory's data)")
    if format == "onnx":
        _require("onnxruntime.quantization", "onnx")
    return quantize


def quantization_samples(data, specs, input_shape, task: str, quantize: str, *, seed: int = 0) -> dict:
    """Calibration images (train split) and check images (held-out split) in the serving contract's
    dtype, from `data` (anything `keras_zoo.data.load_splits` takes, or `Splits`); without data,
    a random probe batch to check on and nothing to calibrate with."""
    (spec,) = specs
    dims = [int(d) if d is not None else None for d in spec.shape]
    shape = [d if d is not None else s for d, s in zip(dims[1:], input_shape)]
    uint8 = spec.dtype.name == "uint8"
    if data is None:
        rng = np.random.default_rng(seed)
        probe = (rng.integers(0, 256, size=(PROBE_IMAGES, *shape)).astype("uint8") if uint8
                 else rng.uniform(0.0, 1.0, size=(PROBE_IMAGES, *shape)).astype(spec.dtype.name))
        return {"calibration": None, "check": probe, "check_source": f"probe batch ({PROBE_IMAGES} random inputs)",
                "calibration_source": None}
    from keras_zoo.data import Splits, load_splits

    if isinstance(data, Splits):
        splits = data
    else:
        options = {}
        if len(shape) == 3:
            options = {"image_size": tuple(shape[:2]), "color_mode": {1: "grayscale", 3: "rgb"}.get(shape[2])}
        splits = load_splits(data, targets="none", batch_size=256, seed=seed, **options)

    def take(dataset, limit):
        batches, n = [], 0
        for batch in dataset:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            batches.append(np.asarray(x))
            n += len(batches[-1])
            if n >= limit:
                break
        x = np.concatenate(batches)[:limit] if batches else np.zeros((0, *shape), "float32")
        if list(x.shape[1:]) != list(shape):
            raise ValueError(f"data {getattr(splits.info, 'name', data)!r} gives inputs of shape "
                             f"{tuple(x.shape[1:])}; the model takes {tuple(shape)}")
        return np.clip(np.round(x * 255.0), 0, 255).astype("uint8") if uint8 else x.astype(spec.dtype.name)

    name = getattr(splits.info, "name", "data")
    check = take(splits.test, CHECK_IMAGES)
    if not len(check):
        raise ValueError(f"data {name!r} has no held-out (test) images to check the quantised file on")
    calibration = take(splits.train, CALIBRATION_IMAGES) if quantize in CALIBRATED else None
    return {"calibration": calibration, "check": check,
            "check_source": f"test split of {name} ({len(check)} images)",
            "calibration_source": None if calibration is None else f"train split of {name} ({len(calibration)} images)"}


def quantize_file(format: str, quantize: str, float_path: str, saved_model_dir: str | None,
                  calibration, input_name: str, out_path: str, name: str, per_channel: bool = True) -> str:
    """Write the quantised twin of `float_path` to `out_path` (LiteRT converts again from the
    SavedModel, as TFLite's post-training quantisation does; ONNX quantises the float file).
    `per_channel=False`: LiteRT ``int8`` with one weight scale per tensor."""
    try:
        if format == "litert":
            _quantize_litert(quantize, saved_model_dir, calibration, input_name, out_path, per_channel)
        else:
            _quantize_onnx(float_path, calibration, input_name, out_path)
    except Exception as err:  # the converters raise many kinds; the reason is what matters
        raise ConversionError(f"{name} cannot be quantised to {quantize} as {format}: {_first_line(err)}") from err
    return out_path


def _quantize_litert(quantize, saved_model_dir, calibration, input_name, out_path, per_channel=True):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        def representative():
            for i in range(len(calibration)):
                yield {input_name: calibration[i:i + 1]}

        converter.representative_dataset = representative
        # Every operator in int8 (no float fallback): the uint8 pixels go in as they are (the
        # contract's input is already integer) and probabilities come out dequantised to float32.
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # TFLite's only switch between one weight scale per output channel and one per tensor.
        converter._experimental_disable_per_channel = not per_channel
    converter.target_spec.supported_ops = ops
    data = strip_litert_names(converter.convert())
    with open(out_path, "wb") as f:
        f.write(data)


def _quantize_onnx(float_path, calibration, input_name, out_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(range(0, len(calibration), 16))

        def get_next(self):
            start = next(self._batches, None)
            return None if start is None else {input_name: calibration[start:start + 16]}

    # uint8 weights (U8U8), not onnxruntime's default int8 (U8S8): on an x86 CPU without VNNI
    # (AVX2 only) onnxruntime's U8S8 kernels can saturate their int16 sums of uint8 x int8 products
    # (the reason its documentation gives for `reduce_range`). Measured on an AVX2 CPU without VNNI
    # (`benchmarks/run.py --only quantize_options`, cnn_color:cifar10, 5,000 held-out photos): top-1
    # agreement with the Keras model 94.3 % with int8 weights, 95.7 % with 7-bit ones
    # (reduce_range), 97.3 % with uint8 (97.8 % with another draw of the 300 calibration images);
    # per-channel int8 scales made it worse (92.7 %), 1,000 calibration images did not help. A CPU
    # with VNNI was not measured.
    quantize_static(float_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, per_channel=False)
    strip_onnx_names(out_path)


# Names in a quantised file. TensorFlow's tensor names ("cnn_fast_1/stage0_conv_1/convolution/
# ReadVariableOp:0"), and the quantiser's names built on them ("..._QuantizeLinear_Output", one
# per quantised tensor), run the graph no differently than short ones, but in a small model they are
# a large share of the file: 19 kB of the 52 kB ONNX int8 file of `cnn_fast`, 1.9 kB of its 40 kB
# LiteRT int8 file (measured). Quantised files are for serving, so they go without them: the
# inputs' and outputs' names (the serving contract) stay; the float file keeps every name for
# inspection.


def strip_litert_names(data: bytes) -> bytes:
    """The LiteRT flatbuffer `data` without its tensor and subgraph names and description (the
    signature's input and output names, which the interpreter's signature runner reads, stay).

    Repacked with TFLite's own schema object API, every buffer's data 16-byte aligned as the
    converter writes it (the schema's ``force_align: 16``). Returned unchanged when the model keeps
    its weights outside the flatbuffer (buffer offsets, models over 2 GB).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if any(buffer.offset for buffer in model.buffers or []):
        return data
    model.description = None
    for subgraph in model.subgraphs or []:
        subgraph.name = None
        for tensor in subgraph.tensors or []:
            tensor.name = None
    model.buffers = [_AlignedBuffer(buffer, schema) for buffer in model.buffers or []]
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _AlignedBuffer:
    """A LiteRT ``Buffer`` packed with its data 16-byte aligned (the generated ``BufferT.Pack``
    aligns bytes to 1, so int32 biases could land unaligned)."""

    def __init__(self, buffer, schema):
        self._buffer, self._schema = buffer, schema

    def Pack(self, builder):  # noqa: N802  (flatbuffers' object API name)
        schema, buffer = self._schema, self._buffer
        data = None
        if buffer.data is not None:
            raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head -= len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector(len(raw))
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, buffer.offset)
        schema.BufferAddSize(builder, buffer.size)
        return schema.BufferEnd(builder)


def strip_onnx_names(path: str) -> None:
    """Rewrite the ONNX file at `path` with short tensor names (hex ids), no node names, doc
    strings or ``value_info`` (shapes onnxruntime infers again). The graph's inputs and outputs keep
    their names. A graph with subgraphs (``If``, ``Loop``), whose names reach into the outer graph,
    (or sparse initializers) is left as it is."""
    import onnx

    from keras_zoo._io import atomic_write_bytes

    model = onnx.load(path)
    graph = model.graph
    if graph.sparse_initializer or any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                       for node in graph.node for attr in node.attribute):
        return
    keep = {value.name for value in list(graph.input) + list(graph.output)}
    names: dict = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, format(len(names), "x"))

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for node in graph.node:
        node.name, node.doc_string = "", ""
        node.input[:] = [short(name) for name in node.input]
        node.output[:] = [short(name) for name in node.output]
    del graph.value_info[:]
    graph.doc_string = model.doc_string = ""
    onnx.checker.check_model(model)
    atomic_write_bytes(path, model.SerializeToString())


def check_agreement(path: str, fn, check, input_name: str, name: str, label: str,
                    min_agreement: float = MIN_AGREEMENT) -> float:
    """Top-1 agreement of the file at `path` with the Keras function `fn` on `check` (per image; per
    pixel for segmenters); raise `ExportVerificationError` under `min_agreement`. Returns it."""
    from keras_zoo.export.errors import ExportVerificationError

    agreement = top1_agreement(path, fn, check, input_name, name, label)
    if agreement < min_agreement:
        raise ExportVerificationError(
            f"{name} does not quantise to {label}: the quantised file picks the Keras model's class for "
            f"{agreement:.2%} of {len(check)} images (at least {min_agreement:.0%} needed); export it in "
            "float, or try another quantize mode")
    return agreement


def top1_agreement(path: str, fn, images, input_name: str, name: str, label: str) -> float:
    """The fraction of `images` (of their pixels, for segmenters) on which the file at `path` picks
    the class the Keras function `fn` picks; its outputs' names, dtypes and shapes are checked first."""
    import tensorflow as tf

    from keras_zoo.export.errors import ExportVerificationError

    runner = Runner(path, {})
    same = total = 0
    for start in range(0, len(images), 256):
        x = images[start:start + 256]
        want = fn(tf.constant(x))
        got = runner(**{input_name: x})
        if set(got) != set(want):
            raise ExportVerificationError(f"{name} {label} file has outputs {sorted(got)}, expected {sorted(want)}")
        for key, value in want.items():
            if np.asarray(got[key]).shape != tuple(value.shape) or np.asarray(got[key]).dtype != value.dtype.as_numpy_dtype:
                raise ExportVerificationError(
                    f"{name} {label} file's {key!r} is {np.asarray(got[key]).dtype} {np.asarray(got[key]).shape}, "
                    f"expected {value.dtype.name} {tuple(value.shape)}")
        same += int(np.sum(np.asarray(got["class_ids"]) == np.asarray(want["class_ids"])))
        total += int(np.asarray(want["class_ids"]).size)
    return same / max(total, 1)


def _choose_weight_scales(staged: str, per_tensor: str, saved_model_dir: str, fn, calibration, input_name: str,
                          name: str) -> dict:
    """LiteRT ``int8``: keep the per-channel file at `staged` (TFLite's default), or replace it by a
    per-tensor conversion when that reproduces the Keras model's probabilities at least as closely
    on the calibration images (train split). Returns the metadata fields that record the choice.

    One scale per output channel serves layers whose channels differ in range (a convolution with
    batch-norm folded into it); it costs 12 bytes per channel for the weights and again for their
    int32 biases (float32 scale, int64 zero point), which in a small model is a visible share of the
    file (3.2 kB of the 38 kB int8 file of `cnn_fast`). The per-tensor file is kept only where it is
    as faithful, so the bytes are never bought with answers. Faithful is measured by the mean total
    variation distance between the file's probabilities and the model's (top-1 agreement on a few
    hundred training images, mostly 100 % for both, would tie).
    """
    quantize_file("litert", "int8", "", saved_model_dir, calibration, input_name, per_tensor, name,
                  per_channel=False)
    distance = {"per-channel": probability_distance(staged, fn, calibration, input_name),
                "per-tensor": probability_distance(per_tensor, fn, calibration, input_name)}
    chosen = "per-channel"
    if distance["per-tensor"] <= distance["per-channel"] and os.path.getsize(per_tensor) < os.path.getsize(staged):
        os.replace(per_tensor, staged)
        chosen = "per-tensor"
    return {"weight_scales": chosen,
            "probability_distance_on_calibration": {k: round(v, 6) for k, v in distance.items()}}


def probability_distance(path: str, fn, images, input_name: str) -> float:
    """The mean total variation distance (half the L1 distance, 0 to 1) between the ``probabilities``
    of the file at `path` and those of the Keras function `fn`, per image (per pixel for segmenters)."""
    import tensorflow as tf

    runner = Runner(path, {})
    total, count = 0.0, 0
    for start in range(0, len(images), 256):
        x = images[start:start + 256]
        want = np.asarray(fn(tf.constant(x))["probabilities"], np.float64)
        got = np.asarray(runner(**{input_name: x})["probabilities"], np.float64)
        total += float(np.sum(np.abs(got - want).sum(-1))) / 2
        count += int(np.prod(want.shape[:-1]))
    return total / max(count, 1)


def quantize_and_check(format: str, quantize: str, float_path: str, saved_model_dir: str | None,
                       fn, specs, samples: dict, name: str, min_agreement: float | None = None) -> dict:
    """Replace the checked float file at `float_path` by its quantised twin, checked by top-1
    agreement; returns the metadata fields that record it (``quantization``, sizes)."""
    input_name = specs[0].name
    min_agreement = MIN_AGREEMENT if min_agreement is None else float(min_agreement)
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement}")
    float_size = os.path.getsize(float_path)
    # Same extension (the runtime is chosen by it), other names until the check has passed.
    staged = os.path.join(os.path.dirname(float_path), f"{quantize}-{os.path.basename(float_path)}")
    per_tensor = os.path.join(os.path.dirname(float_path), f"{quantize}-per-tensor-{os.path.basename(float_path)}")
    scales = {}
    try:
        quantize_file(format, quantize, float_path, saved_model_dir, samples["calibration"], input_name,
                      staged, name)
        if (format, quantize) == ("litert", "int8"):
            scales = _choose_weight_scales(staged, per_tensor, saved_model_dir, fn, samples["calibration"],
                                           input_name, name)
        agreement = check_agreement(staged, fn, samples["check"], input_name, name, f"{format} {quantize}",
                                    min_agreement)
        os.replace(staged, float_path)
    finally:
        for path in (staged, per_tensor):
            if os.path.exists(path):
                os.remove(path)
    size = os.path.getsize(float_path)
    return {
        "quantization": {
            "mode": quantize,
            "method": _METHODS[(format, quantize)],
            "calibration": samples["calibration_source"],
            **scales,
            "check": samples["check_source"],
            "top1_agreement": round(agreement, 6),
            "min_agreement": min_agreement,
        },
        "size_bytes": size,
        "float_size_bytes": float_size,
        "size_ratio": round(size / float_size, 4),
    }
