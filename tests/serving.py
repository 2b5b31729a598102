"""The serving contract, checked the same way on every export (`export_model`, `train`, `finetune`).

`assert_serving_contract(path)` loads an export and checks what the README promises:
``serving_default`` takes uint8 images at the model's size (pixel values 0-255) and answers what the
float signature beside it answers on the same images scaled to [0, 1]; other sizes, channel counts
and ranks are refused, in the graph too, with the expected shape named; classifiers return their class
names as strings. Generators keep their noise input; feature-vector models their float32 features.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras_zoo
from keras_zoo.export.signatures import TASK_DEFAULT

from generic import assert_close


def _in_graph(sig, value):
    """Call a loaded signature's graph with a tensor the Python binding would refuse: the way TF
    Serving's C++ server feeds it (no Python-side shape check), so only the graph's own check stands."""
    import tensorflow as tf

    return sig._call_flat([tf.constant(value)], sig.captured_inputs)


def assert_serving_contract(path: str, batch: int = 3, loaded=None) -> dict:
    """Check the contract on the export at `path` (or on `loaded`, its `load_export` pair); return
    its metadata."""
    import tensorflow as tf

    loaded, meta = loaded or keras_zoo.load_export(path)
    task, shape = meta["task"], tuple(meta["input_shape"])
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["inputs"]
    rng = np.random.default_rng(0)
    if task == "generation":
        assert spec.dtype == tf.float32 and spec.shape.rank == 2, spec  # noise keeps its own input
        return meta
    image = len(shape) == 3
    declared = tuple(spec.shape[1:])
    assert declared in (shape, (None, None, shape[-1])), (declared, shape)  # free H/W: a U-Net
    float_sig = loaded.signatures[TASK_DEFAULT[task]]
    float_spec = float_sig.structured_input_signature[1]["inputs"]
    assert float_spec.dtype == tf.float32 and tuple(float_spec.shape[1:]) == declared
    if not image:  # feature vectors: float32 serving, no pixels
        assert spec.dtype == tf.float32
        return meta
    assert spec.dtype == tf.uint8, f"serving_default of {path} takes {spec.dtype.name}, not uint8"
    assert meta["value_range"] == [0, 255]
    assert meta["inputs"]["serving_default"][0]["dtype"] == "uint8"

    raw = rng.integers(0, 256, size=(batch, *shape)).astype("uint8")
    served = serve(inputs=raw)
    reference = float_sig(inputs=raw.astype("float32") / 255.0)
    for key, value in reference.items():
        if value.dtype.is_floating:
            assert_close(served[key], value, what=f"serving_default {key!r} vs {TASK_DEFAULT[task]}")
        else:
            np.testing.assert_array_equal(served[key], value)

    # Other sizes, channel counts and ranks: refused by the binding and, in the graph, by the contract's
    # own check naming the expected shape.
    h, w, c = shape
    expected = "x".join("N" if d is None else str(d) for d in (None, *declared))
    wrong = [(batch, h, w, c + 2), (h, w, c)]
    if declared[0] is not None:
        wrong.append((batch, h + 8, w + 8, c))
    for bad in wrong:
        with pytest.raises(TypeError, match="Can not cast TensorSpec"):
            serve(inputs=np.zeros(bad, "uint8"))
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"(?s)serving_default_expects_uint8_{expected}.*expected shape"):
            _in_graph(serve, np.zeros(bad, "uint8"))
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError), match="uint8"):
        serve(inputs=tf.constant(raw.astype("float32")))

    if task == "classification":
        names = [n.decode() for n in loaded.signatures["class_names"]()["class_names"].numpy()]
        assert names == (meta["class_names"] or [str(i) for i in range(len(names))])
        labels = [n.decode() for n in served["labels"].numpy()]
        assert labels == [names[i] for i in served["class_ids"].numpy()]
    return meta
