"""Per-task helpers for the generic model tests: a fixed batch to train on and outputs to compare.

A new family whose task is already listed here is covered by tests/test_models.py with no edits; a
new task adds one entry to `fixed_batch` and `outputs`.
"""

from __future__ import annotations

import numpy as np


def fixed_batch(spec, model, input_shape, batch: int = 8, seed: int = 0):
    """(x, y) the recipe's loss can be computed on; y is None for self-supervised tasks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(batch, *input_shape)).astype("float32")
    if spec.task == "classification":
        k = model.outputs[0].shape[-1]
        return x, rng.integers(0, k, size=(batch,)).astype("int32")
    if spec.task == "segmentation":
        k = model.outputs[0].shape[-1]
        return x, rng.integers(0, k, size=(batch, *input_shape[:2])).astype("int32")
    if spec.task == "reconstruction":
        return x, x
    return x, None


def outputs(model, x):
    """Deterministic (inference-mode) outputs as a list of numpy arrays."""
    out = model(x, training=False)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    elif not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o) for o in out]
