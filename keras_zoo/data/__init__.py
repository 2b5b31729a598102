"""Data: how examples reach a model fast.

`load_splits(source, ...)` turns a built-in offline set, numpy arrays, an image folder or a TFDS name
into batched, prefetched train/validation/test `tf.data` pipelines plus a `DatasetInfo`;
`load_dataset` returns one split. This package never imports models, recipes or the registry.
"""

from keras_zoo.data.augment import AUGMENTATIONS
from keras_zoo.data.builtin import BUILTIN_SOURCES
from keras_zoo.data.info import DatasetInfo, Splits
from keras_zoo.data.pipeline import load_dataset, load_splits

__all__ = ["load_dataset", "load_splits", "Splits", "DatasetInfo", "BUILTIN_SOURCES", "AUGMENTATIONS"]
