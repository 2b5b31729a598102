"""Exports in TF Serving's layout (SavedModel; ONNX and LiteRT beside), verified before they are published.

`export_model(model, "exports")` writes ``exports/<model name>/<version>/``: a SavedModel whose
``serving_default`` signature takes the serving contract's input (`keras_zoo.export.contract`: uint8
images at the model's size, or a generator's noise) and returns the task's outputs (for classifiers
``probabilities``, ``class_ids`` and ``labels``). The export is written to a hidden directory beside its
destination, reloaded (``tf.saved_model.load``, onnxruntime or the LiteRT interpreter), its outputs
compared with the in-memory model on a probe batch, and only then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from keras_zoo import _validate
from keras_zoo._io import atomic_write_text, repair_publications, replace_directory, staging_dir
from keras_zoo.export import trust as trust_model
from keras_zoo.export.errors import ExportVerificationError  # noqa: F401  (public name)

METADATA_FILE = os.path.join("assets.extra", "keras_zoo.json")
CLASS_NAMES_FILE = os.path.join("assets", "class_names.txt")




def _task_and_signatures(model, task, signatures):
    import keras_zoo.models  # noqa: F401  (registers the built-in families)
    from keras_zoo import registry
    from keras_zoo.export.signatures import TASK_DEFAULT

    # Built-in models are looked up by name; the callers that know a preset's or a fine-tuned
    # model's spec (train, finetune) pass its task and signatures.
    spec = registry.builtin_spec(model.name) if registry.is_registered(model.name) else None
    if task is None:
        if spec is None:
            raise ValueError(
                f"model {model.name!r} is not registered; pass task= (one of {sorted(TASK_DEFAULT)}; "
                "`keras-zoo export --task`)")
        task = spec.task
    if task not in TASK_DEFAULT:
        raise ValueError(f"task {task!r} has no serving signature; accepted: {sorted(TASK_DEFAULT)}")
    if signatures is None:
        signatures = spec.signatures if spec is not None and spec.task == task else ()
    return task, [s for s in dict.fromkeys(signatures) if s != TASK_DEFAULT[task]]


def _next_version(model_dir: str) -> int:
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] if os.path.isdir(model_dir) else []
    return max(versions, default=0) + 1


def _probe_inputs(input_signature, input_shape=(), seed: int = 0) -> dict:
    """Random inputs for each spec; unknown dimensions after the batch axis take the model's own
    size (signatures with dynamic height and width may only accept multiples of a stride)."""
    rng = np.random.default_rng(seed)
    probe = {}
    for spec in input_signature:
        dims = list(spec.shape)
        own = list(input_shape) if len(dims) == len(input_shape) + 1 else [None] * (len(dims) - 1)
        shape = [2 if d is None else d for d in dims[:1]]
        shape += [d if d is not None else (o if o is not None else 2) for d, o in zip(dims[1:], own)]
        if spec.dtype.is_floating:
            probe[spec.name] = rng.uniform(0.0, 1.0, size=shape).astype(spec.dtype.as_numpy_dtype)
        else:
            probe[spec.name] = rng.integers(0, 255, size=shape).astype(spec.dtype.as_numpy_dtype)
    return probe


def _model_input_shape(model) -> tuple:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else model.input_shape
    return tuple(shape[1:])


def export_model(model, directory: str, version: int | None = None, *, name: str | None = None,
                 task: str | None = None, signatures=None, class_names=None,
                 value_range=(0.0, 1.0), serving: str | None = None, atol: float = 1e-4,
                 format: str = "saved_model", quantize: str | None = None, data=None,
                 min_agreement: float | None = None) -> str:
    """Export `model` for serving as ``directory/<name>/<version>/`` and return that path.

    Every export answers the serving contract (`keras_zoo.export.contract`): ``serving_default``
    takes uint8 images ``(batch, *input_shape)`` with pixel values 0-255 (a generator: its noise),
    and the task's float signature (``classify``...: float32 in [0, 1]) sits beside it.

    Args:
        model: a built `keras.Model` (a registry model, or any model with `task=`).
        directory: the serving root (TF Serving's ``--model_base_path`` parent).
        version: integer version; default is one above the highest existing version. Exporting
            over an existing version replaces it whole.
        name: model directory name; defaults to `model.name` (``<model name>-onnx`` /
            ``-litert`` for those formats, so TF Serving's directory holds SavedModels only).
        task: overrides the registry's task (needed for models the registry does not know).
        signatures: extra signature names; default is the registry spec's list.
        class_names: written to ``assets/class_names.txt`` and the metadata file, and returned as
            strings by the signatures (``labels``, ``class_names``).
        value_range: the range of input values the model was trained on, for the metadata file.
        serving: the signature exported as ``serving_default``; default is the contract's
            (``classify_uint8`` for classifiers, see `contract.TASK_SERVING`).
        atol: tolerance of the SavedModel reload check.
        format: ``"saved_model"`` (default), ``"onnx"`` (``model.onnx``, checked with onnxruntime)
            or ``"litert"`` (``model.tflite``, checked with the LiteRT interpreter); the last two
            hold ``serving_default`` only, with ``keras_zoo.json`` and ``class_names.txt`` beside.
        quantize: a quantised file instead of the float one (classifiers and segmenters):
            ``"dynamic"``, ``"float16"`` or ``"int8"`` for LiteRT (TFLite's post-training
            quantisation; ``int8`` is full integer, uint8 images in, probabilities out as float32),
            ``"int8"`` for ONNX (ONNX Runtime's static QDQ quantisation). It is written beside its
            float twin, which is checked first, and published only if it picks the Keras model's
            class on at least ``formats.MIN_AGREEMENT`` of the held-out images; ``keras_zoo.json``
            records that agreement and both files' sizes. The model directory is
            ``<model name>-<format>-<quantize>``.
        data: images to calibrate (``int8``: the first ``formats.CALIBRATION_IMAGES`` of the train
            split) and check on (up to ``formats.CHECK_IMAGES`` of the held-out split): anything
            `keras_zoo.data.load_splits` takes (a folder, ``"digits"``, arrays) or `Splits`.
            Needed for ``int8``; without it the other modes are checked on a random probe batch.
        min_agreement: the top-1 agreement a quantised file must reach (default
            ``formats.MIN_AGREEMENT``, 0.98).

    Raises:
        ExportVerificationError: the reloaded export's outputs differ from the model's (a quantised
            file: it agrees with the model's class on too few held-out images).
        formats.ConversionError: the model cannot be converted to `format` (the reason is named).
    """
    format, version, task, extra, input_shape, serving = _check_request(
        model, format, quantize, data, version, task, signatures, min_agreement, serving)
    model_dir, version = _version_dir(model, directory, name, format, quantize, version)
    endpoints = _endpoints(model, task, serving, extra, input_shape, class_names, format)
    archive = _archive(model, endpoints)

    staged = staging_dir(model_dir, f".{version}.staging.")
    try:
        metadata = _metadata(model, task, format, input_shape, endpoints, value_range, class_names)
        if format == "saved_model":
            _write_saved_model(staged, archive, endpoints, atol, input_shape, class_names, metadata)
        else:
            _write_portable(staged, model_dir, version, model, archive, endpoints, format, quantize, data,
                            input_shape, task, min_agreement, class_names, metadata)
        return replace_directory(staged, os.path.join(model_dir, str(version)))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _check_request(model, format, quantize, data, version, task, signatures, min_agreement, serving):
    """Check an export's arguments before anything is written.

    Returns ``(format, version, task, extra_signatures, input_shape, serving)``.
    """
    from keras_zoo.export import contract, formats
    from keras_zoo.export.signatures import SIGNATURES, TASK_DEFAULT

    format = formats.check_format(format)
    formats.check_quantize(format, quantize, data=data)
    if version is not None:
        version = _validate.positive_int("version", version)
    task, extra = _task_and_signatures(model, task, signatures)
    formats.check_quantize(format, quantize, task, data)
    if min_agreement is not None and not 0.0 <= float(min_agreement) <= 1.0:
        raise ValueError(f"min_agreement must be a fraction in [0, 1], got {min_agreement!r}")
    input_shape = _model_input_shape(model)
    serving = serving or contract.serving_for(task, input_shape)
    if serving != TASK_DEFAULT[task]:
        # The task's float signature always stays available by name.
        extra = [serving, TASK_DEFAULT[task], *[s for s in extra if s not in (serving, TASK_DEFAULT[task])]]
    unknown = [s for s in extra if s not in SIGNATURES]
    if unknown:
        raise ValueError(f"unknown signature(s) {unknown}; accepted: {sorted(SIGNATURES)}")
    return format, version, task, extra, input_shape, serving


def _version_dir(model, directory, name, format, quantize, version):
    """Create the model directory and pick the version; returns ``(model_dir, version)``."""
    if format != "saved_model":
        name = name or "-".join([model.name, format, *([quantize] if quantize else [])])
    name = name or model.name
    model_dir = os.path.join(os.fspath(directory), name)
    os.makedirs(model_dir, exist_ok=True)
    repair_publications(model_dir)  # a version a killed export left half published counts as taken
    return model_dir, version or _next_version(model_dir)


def _endpoints(model, task, serving, extra, input_shape, class_names, format) -> dict:
    """The signatures to export: all of them for a SavedModel, ``serving_default`` alone otherwise."""
    from keras_zoo.export import contract

    endpoints = contract.endpoints_for(model, task, serving, extra, input_shape)
    names = contract.default_class_names(model, class_names) if task in ("classification",
                                                                        "segmentation") else []
    if format == "saved_model":
        return contract.with_class_names(endpoints, task, names)
    return {"serving_default": endpoints["serving_default"]}


def _archive(model, endpoints: dict):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for sig_name, (fn, input_signature) in endpoints.items():
        archive.add_endpoint(name=sig_name, fn=fn, input_signature=input_signature)
    return archive


def _metadata(model, task, format, input_shape, endpoints, value_range, class_names) -> dict:
    """The ``keras_zoo.json`` fields every format records."""
    import keras
    import tensorflow as tf

    from keras_zoo.export import contract

    serving_spec = endpoints["serving_default"][1][0]
    return {
        "model": model.name,
        "task": task,
        "format": format,
        "input_shape": [int(d) for d in input_shape],  # the model's (H, W, C) or (features,)
        "signatures": sorted(endpoints),
        "inputs": contract.contract_of(endpoints),
        # What serving_default expects: raw 0-255 pixels for a uint8 signature.
        "value_range": ([0, 255] if serving_spec.dtype == tf.uint8
                        else [float(v) for v in value_range]),
        "class_names": list(class_names or []),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }


def _write_saved_model(staged, archive, endpoints, atol, input_shape, class_names, metadata) -> None:
    """Write and check the SavedModel, its class names and its metadata into `staged`."""
    archive.write_out(staged, verbose=False)
    _verify(staged, endpoints, atol, input_shape)
    if class_names:
        atomic_write_text(os.path.join(staged, CLASS_NAMES_FILE),
                          "\n".join(map(str, class_names)) + "\n")
    metadata["files"] = trust_model.record_files(staged)  # checked by load_export (see trust.py)
    atomic_write_text(os.path.join(staged, METADATA_FILE), json.dumps(metadata, indent=2) + "\n")


def _write_portable(staged, model_dir, version, model, archive, endpoints, format, quantize, data, input_shape,
                    task, min_agreement, class_names, metadata) -> None:
    """Convert, check (and quantise) the ONNX / LiteRT file and write its sidecars into `staged`."""
    from keras_zoo.export import formats

    fn, specs = endpoints["serving_default"]
    # Quantisation data first: a wrong folder fails before minutes of conversion.
    samples = (formats.quantization_samples(data, specs, input_shape, task, quantize)
               if quantize else None)
    saved = staging_dir(model_dir, f".{version}.savedmodel.")
    try:
        if format == "litert":
            archive.write_out(saved, verbose=False)
        path = formats.convert(format, fn, specs, staged, saved, model.name)
        # The float file is checked to the float tolerance (for a quantised export these
        # two fields describe the float twin it was quantised from).
        metadata["max_relative_difference"], metadata["outputs"] = formats.verify(
            path, fn, _probe_inputs(specs, input_shape), model.name)
        metadata["tolerance"] = formats.REL_TOLERANCE
        if quantize:
            metadata.update(formats.quantize_and_check(format, quantize, path, saved, fn, specs,
                                                       samples, model.name, min_agreement))
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    formats.write_sidecars(staged, metadata, class_names)


def _verify(path: str, endpoints: dict, atol: float, input_shape=()) -> None:
    """Reload the SavedModel and compare every signature with the in-memory function."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    for sig_name, (fn, input_signature) in endpoints.items():
        probe = _probe_inputs(input_signature, input_shape)
        expected = fn(**{k: tf.constant(v) for k, v in probe.items()})
        got = loaded.signatures[sig_name](**{k: tf.constant(v) for k, v in probe.items()})
        for key, value in expected.items():
            a, b = np.asarray(value), np.asarray(got[key])
            if a.dtype.kind in "SOU":  # strings (class names) must be equal
                if not np.array_equal(a, b):
                    raise ExportVerificationError(f"export check failed for signature {sig_name!r}, "
                                                  f"output {key!r}: {b[:5]} != {a[:5]}")
                continue
            if a.shape != b.shape or not np.allclose(a, b, atol=atol, rtol=1e-3):
                diff = np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.shape == b.shape else "shape"
                raise ExportVerificationError(
                    f"export check failed for signature {sig_name!r}, output {key!r}: reloaded "
                    f"SavedModel differs from the in-memory model (max |diff| = {diff}, atol={atol})")


def load_export(path: str, *, trust: bool = False):
    """Load an export directory (a version dir, or a model dir whose highest version is used).

    The export must be one this package wrote, unchanged (the sha256 of each file is checked against
    its metadata), unless ``trust=True``; a graph with file, network or Python ops is refused either
    way (see `keras_zoo.export.trust`).

    Returns ``(loaded, metadata)``: the `tf.saved_model.load` object and the keras_zoo metadata.
    """
    import tensorflow as tf

    path = os.fspath(path)
    graph_files = ("saved_model.pb", *trust_model.UNPARSED_GRAPH_FILES)  # the last refused by check_export
    if not any(os.path.lexists(os.path.join(path, f)) for f in graph_files):
        versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
        if not versions:
            raise FileNotFoundError(f"no SavedModel at {path!r} (expected saved_model.pb or version sub-folders)")
        path = os.path.join(path, max(versions, key=int))
    metadata = trust_model.check_export(path, trust=trust)
    return tf.saved_model.load(path), metadata


def scan(path, *, trust: bool = False) -> dict:
    """What a SavedModel, ``.keras``, ``.onnx`` or ``.tflite`` file would run, and whether the
    loaders would run it: the same checks `load_export`, ``keras-zoo predict``, `evaluate` and
    `finetune` make, reported in full (every op type with its count, where it occurs and whether it
    is allowed, unknown or refused; the provenance check; a verdict ``"safe"``, ``"needs trust"``
    or ``"refused"``). CLI: ``keras-zoo scan PATH [--json]``. See `keras_zoo.export.scanning`.
    """
    from keras_zoo.export.scanning import scan as _scan

    return _scan(path, trust=trust)
