"""Named train-time augmentations, made from Keras preprocessing layers.

`AUGMENTATIONS` maps a name to a factory `(strength=None, seed=None) -> keras layer`; pipelines accept
"name" or "name:strength" (e.g. "rotate:0.2"). Layers are applied to whole batches (each example
drawing its own transformation) with a stateless seed per batch (`ExampleSeed`), so the map can run in
parallel and still give the same augmentation for the same seed, and a new one each epoch. Masks go
through the same random transformation as their image (nearest interpolation, via the layer's own
`transform_segmentation_masks`), so geometric augmentations keep image and mask aligned.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def _flip(mode):
    def make(strength=None, seed=None):
        if strength is not None:
            raise ValueError(f"Augmentation 'flip' ({mode}) takes no strength; got {strength}.")
        return keras.layers.RandomFlip(mode, seed=seed)

    return make


def _rotate(strength=None, seed=None):
    # factor is a fraction of a full turn: 0.1 = up to +-36 degrees, as in the keras.io examples.
    return keras.layers.RandomRotation(0.1 if strength is None else strength, fill_mode="reflect", seed=seed)


def _translate(strength=None, seed=None):
    s = 0.1 if strength is None else strength
    return keras.layers.RandomTranslation(s, s, fill_mode="reflect", seed=seed)


def _zoom(strength=None, seed=None):
    return keras.layers.RandomZoom(0.1 if strength is None else strength, fill_mode="reflect", seed=seed)


def _crop(strength=None, seed=None):
    # The CIFAR recipe (zero-pad 4 px, random 32x32 crop) as one layer: nearest interpolation turns the
    # random translation into whole-pixel shifts and constant fill supplies the zero padding; 0.125 = 4/32.
    s = 0.125 if strength is None else strength
    return keras.layers.RandomTranslation(s, s, fill_mode="constant", fill_value=0.0, interpolation="nearest",
                                          seed=seed)


def _contrast(strength=None, seed=None):
    return keras.layers.RandomContrast(0.2 if strength is None else strength, value_range=(0.0, 1.0), seed=seed)


def _brightness(strength=None, seed=None):
    return keras.layers.RandomBrightness(0.1 if strength is None else strength, value_range=(0.0, 1.0), seed=seed)


AUGMENTATIONS = {
    "flip": _flip("horizontal"),
    "flip_vertical": _flip("vertical"),
    "rotate": _rotate,
    "translate": _translate,
    "zoom": _zoom,
    "crop": _crop,
    "contrast": _contrast,
    "brightness": _brightness,
}


def parse_augmentations(augment, seed: int = 0) -> list:
    """Turn ("flip", "rotate:0.2", ...) into seeded Keras layers; a bad name or strength raises ValueError."""
    if isinstance(augment, str):
        augment = (augment,)
    if augment is None:
        return []
    layers = []
    for i, item in enumerate(augment):
        if not isinstance(item, str):
            raise ValueError(f"Augmentations are names from {sorted(AUGMENTATIONS)}; got {item!r}.")
        name, _, strength_text = item.partition(":")
        if name not in AUGMENTATIONS:
            raise ValueError(f"Unknown augmentation {item!r}; accepted: {', '.join(AUGMENTATIONS)} "
                             "(optionally 'name:strength', e.g. 'rotate:0.2').")
        strength = None
        if strength_text:
            try:
                strength = float(strength_text)
            except ValueError:
                raise ValueError(f"Augmentation {item!r}: strength {strength_text!r} is not a number.") from None
        try:
            layers.append(AUGMENTATIONS[name](strength, seed=seed + i))
        except ValueError as err:
            raise ValueError(f"Augmentation {item!r}: {err}") from None
    return layers


class ExampleSeed(keras.random.SeedGenerator):
    """A SeedGenerator that hands a layer seeds derived from one seed tensor (per batch or per example).

    Keras layers draw from a stateful generator by default, which forces a sequential map to stay
    reproducible. Drawing from this stateless one instead lets every batch be augmented in parallel,
    deterministically. Each draw folds in a counter so repeated draws (e.g. height and width shifts) differ.
    """

    def __init__(self, seed):  # no super().__init__(): there is no state variable to create
        self._seed = tf.cast(seed, tf.int64)
        self._draws = 0
        self.name = "example_seed"

    def next(self, ordered=True):
        self._draws += 1
        return tf.random.experimental.stateless_fold_in(self._seed, self._draws)


def apply_augmentations(layers: list, image, mask, seed):
    """Augment one example or a batch: `image` (H, W, C) or (B, H, W, C) float32, optional `mask` (H, W) or
    (B, H, W) int32, `seed` shape (2,). In a batch every example draws its own transformation."""
    single = image.shape.rank == 3
    if single:
        image = image[None]
        mask = None if mask is None else mask[None]
    static_shape = image.shape
    if mask is not None:
        mask = tf.cast(mask[..., None], tf.float32)
    for i, layer in enumerate(layers):
        # As DataLayer.__call__ does, run the layer on TensorFlow ops whatever the Keras backend.
        layer.backend.set_backend("tensorflow")
        try:
            layer_seed = ExampleSeed(tf.random.experimental.stateless_fold_in(seed, i))
            data = image if mask is None else {"images": image, "segmentation_masks": mask}
            transformation = layer.get_random_transformation(data, training=True, seed=layer_seed)
            image = layer.transform_images(image, transformation, training=True)
            if mask is not None:
                mask = layer.transform_segmentation_masks(mask, transformation, training=True)
        finally:
            layer.backend.reset()
    image = tf.ensure_shape(tf.cast(image, tf.float32), static_shape)
    if mask is not None:
        mask = tf.ensure_shape(tf.cast(tf.round(mask[..., 0]), tf.int32), static_shape[:3])
    if single:
        return image[0], None if mask is None else mask[0]
    return image, mask
