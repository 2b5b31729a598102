"""The value types the data module hands out: `DatasetInfo` (what a source holds) and `Splits`."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

TARGETS = ("label", "mask", "image", "none")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a loaded source holds, for building a model that fits it.

    `num_classes` counts the classes of the targets (for targets="mask": mask classes including
    background) and is None for targets "image"/"none". `value_range` is the range of the float32
    inputs: (0, 1) for images, the observed range for standardised points. `levels` is the number
    of equally spaced values the image inputs take in [0, 1] as stored (17 for `digits`, whose
    pixels are 0..16; 256 for 8-bit files and TFDS images; None for continuous values or vectors);
    `train` passes it to models that take a `levels` argument (a VAE's discrete pixel likelihood).
    """

    name: str
    input_shape: tuple
    num_classes: int | None
    class_names: tuple
    num_examples: dict
    targets: str
    value_range: tuple = (0.0, 1.0)
    levels: int | None = None


@dataclasses.dataclass
class Splits:
    """Batched, prefetched train/validation/test pipelines of one source, and its `DatasetInfo`."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo
