"""SavedModel export in TF Serving's layout, verified before it is published.

`export_model(model, "exports")` writes ``exports/<model name>/<version>/``: a SavedModel whose
``serving_default`` signature takes ``inputs`` (float32, ``(batch, *input_shape)``, values in [0, 1])
and returns the task's outputs (for classifiers ``probabilities`` and ``class_ids``). The export is
written to a hidden directory beside its destination, reloaded with ``tf.saved_model.load``, its
outputs compared with the in-memory model on a probe batch, and only then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from keras_zoo import _validate
from keras_zoo._io import atomic_write_text, repair_publications, replace_directory, staging_dir
from keras_zoo.export import trust as trust_model

METADATA_FILE = os.path.join("assets.extra", "keras_zoo.json")
CLASS_NAMES_FILE = os.path.join("assets", "class_names.txt")


class ExportVerificationError(RuntimeError):
    """The reloaded SavedModel does not reproduce the in-memory model."""


def _task_and_signatures(model, task, signatures):
    from keras_zoo import registry
    from keras_zoo.export.signatures import TASK_DEFAULT

    spec = None
    try:
        spec = registry.get_spec(model.name)
    except (KeyError, TypeError):
        pass
    if task is None:
        if spec is None:
            raise ValueError(
                f"model {model.name!r} is not registered; pass task= (one of {sorted(TASK_DEFAULT)})")
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
                 value_range=(0.0, 1.0), serving: str | None = None, atol: float = 1e-4) -> str:
    """Export `model` for serving as ``directory/<name>/<version>/`` and return that path.

    Args:
        model: a built `keras.Model` (a registry model, or any model with `task=`).
        directory: the serving root (TF Serving's ``--model_base_path`` parent).
        version: integer version; default is one above the highest existing version. Exporting
            over an existing version replaces it whole.
        name: model directory name; defaults to `model.name`.
        task: overrides the registry's task (needed for models the registry does not know).
        signatures: extra signature names; default is the registry spec's list (plus, with a
            `serving` other than the task's, the task's own signature).
        class_names: written to ``assets/class_names.txt`` and the metadata file.
        value_range: the range of input values the model was trained on, for the metadata file.
        serving: the signature exported as ``serving_default``; default is the task's own
            (``classify`` for classifiers). ``"classify_uint8"`` serves raw uint8 images with the
            scaling inside the graph (the metadata's value range is then [0, 255]); the task's
            float signature is kept under its own name.
        atol: tolerance of the reload check.

    Raises:
        ExportVerificationError: the reloaded SavedModel's outputs differ from the model's.
    """
    import keras
    import tensorflow as tf

    from keras_zoo.export.signatures import SIGNATURES, TASK_DEFAULT

    if version is not None:
        version = _validate.positive_int("version", version)
    chosen = signatures is not None
    task, extra = _task_and_signatures(model, task, signatures)
    serving = serving or TASK_DEFAULT[task]
    if serving != TASK_DEFAULT[task]:
        # Unless the signatures were chosen explicitly, the task's float signature stays available
        # by name (where one is registered).
        default = [TASK_DEFAULT[task]] if TASK_DEFAULT[task] in SIGNATURES and not chosen else []
        extra = [serving, *default, *[s for s in extra if s != serving]]
    unknown = [s for s in extra if s not in SIGNATURES]
    if unknown:
        raise ValueError(f"unknown signature(s) {unknown}; accepted: {sorted(SIGNATURES)}")
    name = name or model.name
    model_dir = os.path.join(os.fspath(directory), name)
    os.makedirs(model_dir, exist_ok=True)
    repair_publications(model_dir)  # a version a killed export left half published counts as taken
    version = version or _next_version(model_dir)
    input_shape = _model_input_shape(model)

    endpoints = {"serving_default": SIGNATURES[serving](model, input_shape)}
    endpoints[serving] = endpoints["serving_default"]
    for sig in extra:
        endpoints.setdefault(sig, SIGNATURES[sig](model, input_shape))

    archive = keras.export.ExportArchive()
    archive.track(model)
    for sig_name, (fn, input_signature) in endpoints.items():
        archive.add_endpoint(name=sig_name, fn=fn, input_signature=input_signature)

    staged = staging_dir(model_dir, f".{version}.staging.")
    try:
        archive.write_out(staged, verbose=False)
        _verify(staged, endpoints, atol, input_shape)
        metadata = {
            "model": model.name,
            "task": task,
            "input_shape": [int(d) for d in input_shape],  # the model's (H, W, C) or (features,)
            "signatures": sorted(endpoints),
            "inputs": {sig: [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name}
                             for s in endpoints[sig][1]] for sig in endpoints},
            # What serving_default expects: raw 0-255 pixels for a uint8 signature.
            "value_range": ([0, 255] if endpoints["serving_default"][1][0].dtype == tf.uint8
                            else [float(v) for v in value_range]),
            "class_names": list(class_names or []),
            "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__,
        }
        if class_names:
            atomic_write_text(os.path.join(staged, CLASS_NAMES_FILE), "\n".join(map(str, class_names)) + "\n")
        metadata["files"] = trust_model.record_files(staged)  # checked by load_export (see trust.py)
        atomic_write_text(os.path.join(staged, METADATA_FILE), json.dumps(metadata, indent=2) + "\n")
        return replace_directory(staged, os.path.join(model_dir, str(version)))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


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
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
        if not versions:
            raise FileNotFoundError(f"no SavedModel at {path!r} (expected saved_model.pb or version sub-folders)")
        path = os.path.join(path, max(versions, key=int))
    metadata = trust_model.check_export(path, trust=trust)
    return tf.saved_model.load(path), metadata
