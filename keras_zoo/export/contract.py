"""The serving contract: what every export's `serving_default` takes, enforced inside the graph.

Every image model's ``serving_default`` takes ``inputs``: uint8 images ``(batch, H, W, C)`` at the
model's own size, raw pixel values 0-255 (what a client gets by decoding a PNG or JPEG, and what
TF Serving's REST API carries as integers). The task's float signature (``classify``, ``segment``,
``reconstruct``, ``embed``: float32 in [0, 1], the values the model was trained on) is exported
beside it under its own name. Generative models keep their noise input (``generate``: float32
``(batch, latent_dim)``), and models of feature vectors (no pixels) their float32 features.

Each signature checks its input's rank and fixed dimensions in the graph (``EnsureShape``), so an
image of another size or channel count is refused wherever the graph runs (TF Serving's C++ server
included), with the expected shape in the error; models that take any height and width (U-Net) check
their channels and stride. Classifier signatures also return ``labels`` (the predicted class names
as strings), and a ``class_names`` signature returns every class name in output order.
"""

from __future__ import annotations

# The signature exported as `serving_default` for each task (the float one, TASK_DEFAULT's, is kept
# beside it by name).
TASK_SERVING = {
    "classification": "classify_uint8",
    "segmentation": "segment_uint8",
    "reconstruction": "reconstruct_uint8",
    "generation": "generate",
    "contrastive": "embed_uint8",
    "pretext": "embed_uint8",
    "clustering": "cluster_uint8",
    "forecasting": "forecast_uint8",  # images read as rows; a series (T, F) keeps the float `forecast`
}


def serving_for(task: str, input_shape) -> str:
    """The contract's `serving_default` for a task and the model's input shape: raw uint8 for images
    (H, W, C); feature vectors (a model trained on points, e.g. ``moons``) have no pixels and keep the
    task's float32 signature."""
    from keras_zoo.export.signatures import TASK_DEFAULT

    return TASK_SERVING[task] if len(tuple(input_shape)) == 3 else TASK_DEFAULT[task]


def _dims(shape) -> list:
    return [None if d is None else int(d) for d in shape]


def describe(spec) -> str:
    """``uint8 (batch, 8, 8, 1)``: a signature input as the README and error messages write it."""
    dims = _dims(spec.shape)
    text = ", ".join(["batch" if i == 0 and d is None else ("any" if d is None else str(d))
                      for i, d in enumerate(dims)])
    return f"{spec.dtype.name} ({text})" if dims else f"{spec.dtype.name} scalar"


def contract_of(endpoints: dict) -> dict:
    """Per signature, its inputs as JSON: name, dtype, shape (null = any) and the values they take."""
    out = {}
    for sig, (_, specs) in endpoints.items():
        rows = []
        for spec in specs:
            row = {"name": spec.name, "dtype": spec.dtype.name, "shape": _dims(spec.shape),
                   "description": describe(spec)}
            if len(spec.shape) >= 2 and spec.name == "inputs":
                row["values"] = [0, 255] if spec.dtype.name == "uint8" else None
            rows.append(row)
        out[sig] = rows
    return out


def _op_name(sig: str, spec) -> str:
    dims = "x".join("N" if d is None else str(d) for d in _dims(spec.shape)) or "scalar"
    return f"{sig}_expects_{spec.dtype.name}_{dims}"


def _positional(specs, args, kwargs) -> list:
    """Signature functions are called positionally (ExportArchive) or by input name (a reload check)."""
    return list(args) + [kwargs[s.name] for s in specs[len(args):]]


def enforce(sig: str, fn, specs):
    """`fn` with each input's rank and known dimensions checked in the graph.

    A traced signature trusts its declared shape, and a caller that bypasses the Python binding (TF
    Serving, a C++ client) could feed another; ``EnsureShape`` checks at run time and its error names
    the expected shape (and the node is named after the contract, e.g. ``serving_default_expects_uint8_Nx8x8x1``).
    """
    import tensorflow as tf

    def checked(*args, **kwargs):
        args = _positional(specs, args, kwargs)
        args = [tf.ensure_shape(a, s.shape, name=_op_name(sig, s)) if s.shape.rank is not None else a
                for a, s in zip(args, specs)]
        return fn(*args)

    return checked, specs


def endpoints_for(model, task: str, serving: str, extra, input_shape) -> dict:
    """``{signature name: (fn, input specs)}`` with ``serving_default`` first, every input checked."""
    from keras_zoo.export.signatures import SIGNATURES

    from keras_zoo.export.signatures import TASK_DEFAULT

    raw = {"serving_default": SIGNATURES[serving](model, input_shape)}
    if serving == TASK_DEFAULT[task]:
        raw[serving] = raw["serving_default"]  # e.g. `generate`, by its own name too
    # (a uint8 twin is not exported twice: each endpoint is one more trace, save and check)
    for sig in extra:
        if sig == serving:
            continue
        raw.setdefault(sig, SIGNATURES[sig](model, input_shape))
    return {sig: enforce(sig, fn, specs) for sig, (fn, specs) in raw.items()}


def default_class_names(model, class_names) -> list:
    """The given names as strings, else ``"0" ... "K-1"`` for the model's K outputs."""
    if class_names:
        return [str(c) for c in class_names]
    k = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    return [str(i) for i in range(int(k))] if k else []


def with_class_names(endpoints: dict, task: str, names: list) -> dict:
    """Classifier signatures gain a ``labels`` output (the predicted class names, string (batch,)),
    and classifiers and segmenters a no-input ``class_names`` signature (string (K,))."""
    import tensorflow as tf

    if task not in ("classification", "segmentation") or not names:
        return endpoints
    table = tf.constant(names, dtype=tf.string)

    def labelled(fn, specs):
        def call(*args, **kwargs):
            result = dict(fn(*_positional(specs, args, kwargs)))
            if "class_ids" in result and len(result["class_ids"].shape) == 1:
                result["labels"] = tf.gather(table, result["class_ids"])
            return result

        return call

    out = {sig: ((labelled(fn, specs), specs) if task == "classification" else (fn, specs))
           for sig, (fn, specs) in endpoints.items()}

    def class_names():
        return {"class_names": tf.identity(table)}

    out["class_names"] = (class_names, [])
    return out


def check_inputs(contract: dict, inputs: dict, where: str) -> None:
    """Refuse numpy inputs that do not match a signature's contract (for runtimes that would resize
    or cast silently), naming the expected dtype and shape."""
    for row in contract:
        if row["name"] not in inputs:
            raise ValueError(f"{where}: missing input {row['name']!r}; expected {row['description']}")
        value = inputs[row["name"]]
        want = row["shape"]
        ok = (str(value.dtype) == row["dtype"] and value.ndim == len(want)
              and all(w is None or w == h for w, h in zip(want, value.shape)))
        if not ok:
            raise ValueError(f"{where}: input {row['name']!r} is {value.dtype} {tuple(value.shape)}; "
                             f"expected {row['description']}")
