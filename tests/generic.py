"""Per-task helpers for the generic model tests: a fixed batch to train on and outputs to compare.

A new family whose task is already listed here is covered by tests/test_models.py with no edits; a
new task adds one entry to `fixed_batch` and `outputs`.
"""

from __future__ import annotations

import numpy as np


def traced_once() -> set:
    """The keras.applications backbones whose training graphs the generic tests leave to the family's
    smallest member, mobilenet_v3_small (the round trips of tests/test_models.py and the two-replica
    step of tests/distributed_step.py). Tracing one costs 1-2 minutes on 2 shared cores, they share
    Keras's layers and this package's wrapper, and tests/test_applications.py checks every one of them
    against Keras itself; each is still built and run forward at its default shape."""
    import keras_zoo

    return set(keras_zoo.list_models(family="applications")) - {"mobilenet_v3_small"}


# Deeper twins: the same builder with more blocks of the same layers (ResNet-32/56 are ResNet-20 with
# 5/9 blocks a stage for 3; ResNet-34 is ResNet-18 with 3-4-6-3 for 2-2-2-2). Saving, reloading,
# exporting and the two-replica step's arithmetic (the loss scaling, the gradient all-reduce, each
# batch-norm layer's global statistics) go layer by layer, so the twin's tests cover them: these run
# only the builds and forward passes of tests/test_models.py, at their default shape, not the minutes
# of tracing of the round trips and the step. tests/test_models.py's
# `test_a_deeper_twin_has_nothing_its_twin_lacks` checks the claim.
DEEPER_TWINS = {"resnet32": "resnet20", "resnet56": "resnet20", "resnet34": "resnet18"}


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
    if spec.task == "contrastive":
        # A contrastive loss on one batch moves with the random augmentations as well as with the
        # weights. Views of uniform noise are hard to match, so use 32 distinct coarse patterns
        # (random 2x2 grids upsampled), which survive crops and blur: four Adam steps then lower
        # SimCLR's loss by 0.6-1.3 nats across 8 seeds, well above the augmentation noise.
        h, w = input_shape[0], input_shape[1]
        coarse = rng.uniform(0.0, 1.0, size=(max(batch, 32), 2, 2, input_shape[-1]))
        x = np.repeat(np.repeat(coarse, -(-h // 2), axis=1), -(-w // 2), axis=2)[:, :h, :w]
        return x.astype("float32"), None
    if spec.task == "generation":
        # Images only. The loss that must fall is a VAE's negative ELBO or a GAN's discriminator
        # (critic) loss. A GAN's generator moves too, so its discriminator's loss falls reliably
        # only where real images are easy to tell from the untrained generator's mid-grey output:
        # dim images (values in [0, 0.1]). There the first steps lower the running loss
        # (measured over 6 seeds: dcgan by 0.07-0.26, wgan_gp by 2.2-4.5, vae by 5-7 nats).
        return (0.1 * x).astype("float32"), None
    return x, None


def serving_input(signature, image_shape=(), batch: int = 3, seed: int = 1):
    """A float32 batch shaped like the `inputs` a loaded serving signature declares.

    Classifiers, autoencoders and encoders take images; a generator's `generate` takes noise
    vectors, so the shape comes from the signature rather than from the model's input shape.
    Signatures that accept any height and width (a U-Net's `segment`) get `image_shape`'s.
    """
    spec = signature.structured_input_signature[1]["inputs"]
    dims = list(spec.shape)
    own = list(image_shape) if len(image_shape) == len(dims) - 1 else [None] * (len(dims) - 1)
    shape = [batch if dims[0] is None else dims[0]]
    shape += [d if d is not None else o for d, o in zip(dims[1:], own)]
    if None in shape:
        raise ValueError(f"signature input {spec} has unknown dimensions; pass image_shape")
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def assert_close(actual, expected, rel: float = 1e-3, what: str = "outputs"):
    """Assert two float arrays agree to `rel` of the expected values' scale (their largest magnitude).

    Two computations of one float32 network (a Keras model and its export, a model and its reload)
    may sum in different orders, and the order depends on the CPU's vector width (AVX2 against
    AVX-512): deep nets then differ by a few float32 ulps per layer, tens of ulps of the output's
    scale at the end. A tolerance tied to the scale holds on any CPU; a wrong export (other weights,
    a missing normalisation, another head) is off by a large fraction of the scale and still fails.
    """
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    tolerance = rel * max(scale, np.finfo(np.float32).tiny)
    worst = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert worst <= tolerance, (
        f"{what} differ by up to {worst:.3g}, more than {rel:g} of their scale {scale:.3g}")


def outputs(model, x):
    """Deterministic (inference-mode) outputs as a list of numpy arrays."""
    out = model(x, training=False)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    elif not isinstance(out, (list, tuple)):
        out = [out]
    return [np.asarray(o) for o in out]
