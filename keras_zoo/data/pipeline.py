"""`load_splits` / `load_dataset`: a source turned into batched, prefetched tf.data pipelines.

Stage order, per split: decode -> cache -> shuffle (train) -> normalise -> augment (train) -> batch ->
prefetch. Decoding happens once (before the cache, which holds 8-bit images as uint8, see
`keras_zoo.data.cache`); normalising to float32, shuffling and augmentation happen after it, so the
cache stays compact and every epoch sees a new order and new augmentations. Randomness is seeded: the same `seed`
gives the same split membership, the same first-epoch order and the same augmentations.
Every finished pipeline runs with tf.data's autotuner off (see `_pipeline_options` for why);
`ds.with_options(...)` with `autotune.enabled = True` turns it back on.
"""

from __future__ import annotations

import dataclasses
import numbers
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

from keras_zoo.data.augment import apply_augmentations, parse_augmentations  # noqa: E402
from keras_zoo.data.cache import CACHE_MODES  # noqa: E402
from keras_zoo.data.cache import plan as plan_cache  # noqa: E402
from keras_zoo.data.info import TARGETS, DatasetInfo, Splits  # noqa: E402
from keras_zoo.data.sources import SPLITS, Request, load_raw  # noqa: E402

_AUTOTUNE = tf.data.AUTOTUNE
# Shuffle buffers hold whole (cached) examples; past this many the shuffle is approximate.
_MAX_SHUFFLE_BUFFER = 50_000
_COLOR_MODES = (None, "grayscale", "rgb")


def _pipeline_options() -> tf.data.Options:
    """Options every finished pipeline carries: tf.data's autotuner off.

    With the autotuner on, the training step that reads the pipeline ran on one of the two cores in
    about half of the `fit` calls (whole epochs at ~1.0 core of CPU time per second instead of ~1.8,
    decided when the epoch's iterator starts; neither `cpu_budget`, `inject_prefetch`, a private
    thread pool nor a fixed prefetch size removed it). Off, every epoch used both cores: `cnn_fast`
    on 8,000 MNIST PNGs, epochs 1.5-1.7 s against 2.56 s in the one-core epochs; resnet20 steps
    ~300 ms against 510 ms. Without the autotuner AUTOTUNE parallelism is the number of cores (at
    most 16) and prefetch buffers size themselves (tf.data's own heuristic).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def load_splits(source, *, targets="label", batch_size=64, image_size=None, color_mode=None,
                validation_fraction=0.1, test_fraction=0.2, seed=0, augment=(), corruption=None,
                cache="auto", data_dir=None, options=None, classes=None, cache_budget=None) -> Splits:
    """Load `source` as train/validation/test pipelines of float32 inputs in [0, 1].

    Args:
        source: a builtin name ("digits", "shapes", "moons", "spirals"), optionally with options
            ("shapes:size=64,count=2000"); a tuple `(x, y)` / `(x,)` of numpy arrays or a bare array;
            a folder path (str or pathlib.Path); or a TFDS name ("mnist", "tfds:cifar10").
        targets: "label" -> (x, y int32); "mask" -> (x, mask int32 (H, W)); "image" -> (x, x) or, with
            `corruption`, (x_corrupted, target); "none" -> x.
        batch_size: examples per batch (the last batch may be smaller).
        image_size: (height, width) to resize images to (bilinear; masks nearest).
        color_mode: "grayscale", "rgb", or None to keep the source's.
        validation_fraction, test_fraction: split fractions for sources without given splits
            (stratified by label when there are labels). Where a source has its own test split
            (TFDS, train/test folders), validation is carved from train and test_fraction is unused.
        seed: seeds split membership, shuffling, augmentation and corruption.
        augment: names from `AUGMENTATIONS`, optionally "name:strength"; applied to train only.
        corruption: callable `(x, seed) -> (x_corrupted, target)` for targets="image", applied to
            every split after augmentation; `seed` is an int64 (2,) tensor for `tf.random.stateless_*`
            ops, fixed per example for validation/test and new each epoch for train.
        cache: where decoded examples (uint8 for 8-bit images) are cached: "auto" (in memory when
            they fit `cache_budget`, else in files under a temporary folder when the disk has room,
            else not at all; one log line says which), "memory" (or True), "file", "none" (or
            False), or any other string: a file prefix to cache to ("<prefix>.<split>").
        data_dir: TFDS data directory.
        options: source options (override those in the source string), e.g. {"count": 500}.
        classes: keep only these classes (ids or class names, targets="label"), renumbered 0..k-1
            in the order given; `info.class_names` names them. Split membership is the full
            source's (stratified by class), so the kept classes' test examples are the same ones the
            full source holds out. Counting the kept examples reads each split once.
        cache_budget: bytes the in-memory cache may take with cache="auto"; default half the memory
            available at load time (`keras_zoo.data.cache.memory_budget()`).

    Returns:
        `Splits(train, validation, test, info)`.

    Example:
        >>> splits = load_splits("digits", batch_size=32, augment=("rotate:0.05",))
        >>> splits.info.input_shape
        (8, 8, 1)
    """
    request = _validate(targets, batch_size, image_size, color_mode, validation_fraction, test_fraction,
                        seed, corruption, cache, data_dir, cache_budget)
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"options must be a dict of source options; got {options!r}.")
    layers = parse_augmentations(augment, seed)
    raw = load_raw(source, request, options)
    if layers and len(raw.input_shape) != 3:
        raise ValueError(f"Augmentations apply to images; source {raw.name!r} has inputs of shape {raw.input_shape}.")
    info = DatasetInfo(name=raw.name, input_shape=tuple(raw.input_shape), num_classes=raw.num_classes,
                       class_names=tuple(raw.class_names), num_examples=dict(raw.num_examples),
                       targets=targets, value_range=tuple(raw.value_range), levels=raw.levels)
    sources = dict(raw.datasets)
    if classes is not None:
        sources, info = _keep_classes(sources, info, classes)
    cached = plan_cache(sources, info.num_examples, cache, cache_budget, raw.name)
    options = _pipeline_options()
    datasets = {
        split: _finish(cached.apply(sources[split], split), split, info.num_examples[split], request,
                       batch_size, layers if split == "train" else [], corruption,
                       raw.restore).with_options(options)
        for split in SPLITS
    }
    return Splits(train=datasets["train"], validation=datasets["validation"], test=datasets["test"], info=info)


def load_dataset(source, split="train", **kwargs) -> tf.data.Dataset:
    """One split ("train", "validation" or "test") of `load_splits(source, **kwargs)`."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {SPLITS}.")
    return getattr(load_splits(source, **kwargs), split)


def _keep_classes(datasets: dict, info: DatasetInfo, classes):
    """Each split filtered to `classes` (ids or names) with labels renumbered 0..k-1, and its info."""
    if info.targets != "label" or not info.num_classes:
        raise ValueError(f"classes= selects labelled examples; source {info.name!r} with "
                         f"targets={info.targets!r} has no class labels.")
    names = list(info.class_names)
    if isinstance(classes, (str, int)):
        classes = (classes,)
    ids = []
    for c in classes:
        if isinstance(c, str) and c in names:
            ids.append(names.index(c))
        elif isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c < info.num_classes:
            ids.append(int(c))
        else:
            raise ValueError(f"classes= names {c!r}, which is not a class of {info.name!r}; accepted: ids "
                             f"0..{info.num_classes - 1} or names {names}.")
    if len(set(ids)) != len(ids) or len(ids) < 2:
        raise ValueError(f"classes= must name at least 2 distinct classes; got {list(classes)!r}.")
    table = [-1] * info.num_classes
    for new, old in enumerate(ids):
        table[old] = new
    lookup = tf.constant(table, tf.int32)

    def relabel(example):
        return {**example, "y": tf.gather(lookup, tf.cast(example["y"], tf.int32))}

    kept, counts = {}, {}
    for split, ds in datasets.items():
        kept[split] = ds.map(relabel, num_parallel_calls=_AUTOTUNE).filter(lambda ex: ex["y"] >= 0)
        counts[split] = int(kept[split].map(lambda ex: ex["y"]).reduce(0, lambda n, _: n + 1))
    info = dataclasses.replace(info, num_classes=len(ids), class_names=tuple(names[i] for i in ids),
                               num_examples=counts)
    return kept, info


def _validate(targets, batch_size, image_size, color_mode, validation_fraction, test_fraction, seed,
              corruption, cache, data_dir, cache_budget=None) -> Request:
    if targets not in TARGETS:
        raise ValueError(f"Unknown targets {targets!r}; choose one of {TARGETS}.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    if image_size is not None:
        if (len(tuple(image_size)) != 2 or not all(isinstance(d, int) and d > 0 for d in image_size)):
            raise ValueError(f"image_size must be (height, width) of positive ints; got {image_size!r}.")
        image_size = tuple(image_size)
    if color_mode not in _COLOR_MODES:
        raise ValueError(f"Unknown color_mode {color_mode!r}; choose one of {_COLOR_MODES}.")
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1); got {value!r}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(f"validation_fraction + test_fraction must leave training examples; got "
                         f"{validation_fraction} + {test_fraction}.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    if corruption is not None:
        if not callable(corruption):
            raise ValueError(f"corruption must be a callable (x, seed) -> (x_corrupted, target); got {corruption!r}.")
        if targets != "image":
            raise ValueError(f"corruption applies to targets='image' (denoising, masked reconstruction); "
                             f"got targets={targets!r}.")
    if not isinstance(cache, (bool, str)) or cache == "":
        raise ValueError(f"cache must be one of {CACHE_MODES}, True, False or a file prefix string; got {cache!r}.")
    if cache_budget is not None and (not isinstance(cache_budget, numbers.Real) or isinstance(cache_budget, bool)
                                     or cache_budget < 0):
        raise ValueError(f"cache_budget must be a number of bytes >= 0 or None; got {cache_budget!r}.")
    return Request(targets=targets, image_size=image_size, color_mode=color_mode,
                   validation_fraction=float(validation_fraction), test_fraction=float(test_fraction),
                   seed=seed, data_dir=data_dir)


def _finish(ds, split, count, request, batch_size, layers, corruption, restore):
    """shuffle -> batch -> normalise and augment -> prefetch for one split of decoded (cached) examples.

    Normalising and the Keras augmentation layers run on whole batches (one op per batch, each example
    still drawing its own random transformation). A `corruption` is a per-example callable, so with one
    the map runs per example before batching.
    """
    training = split == "train"
    if training:
        ds = ds.shuffle(max(1, min(count, _MAX_SHUFFLE_BUFFER)), seed=request.seed, reshuffle_each_iteration=True)
    finalise = _finaliser(request.targets, layers, corruption, restore)
    if corruption is None:
        ds = ds.batch(batch_size)
        if layers:  # train only: one fresh (2,) seed per batch per epoch, the same sequence for the same seed
            ds = tf.data.Dataset.zip(ds, _epoch_seeds(request.seed)).map(
                finalise, num_parallel_calls=_AUTOTUNE, deterministic=True)
        else:
            ds = ds.map(lambda ex: finalise(ex, None), num_parallel_calls=_AUTOTUNE, deterministic=True)
        return ds.prefetch(_AUTOTUNE)
    if training:
        # One fresh (2,) seed per example per epoch, the same sequence for the same seed.
        ds = tf.data.Dataset.zip(ds, _epoch_seeds(request.seed))
    else:
        # Fixed per example: derived from the seed, the split and the example's position.
        base = tf.constant([request.seed, SPLITS.index(split)], tf.int64)
        ds = ds.enumerate().map(lambda i, ex: (ex, tf.random.experimental.stateless_fold_in(base, i)))
    ds = ds.map(finalise, num_parallel_calls=_AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(_AUTOTUNE)


def _epoch_seeds(seed: int):
    """An endless dataset of (2,) int64 seeds: the same sequence for the same `seed`, new each epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def _finaliser(targets, layers, corruption, restore):
    """The map after the shuffle, on one example or a batch: normalise, augment, arrange (inputs, targets)."""

    def finalise(example, seed):
        x, mask = example["x"], example.get("mask")
        if restore is not None:
            x = restore(x)
        if seed is not None:
            augment_seed, corruption_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        if layers:
            x, mask = apply_augmentations(layers, x, mask, augment_seed)
        if targets == "label":
            return x, example["y"]
        if targets == "mask":
            return x, mask
        if targets == "image":
            return corruption(x, corruption_seed) if corruption is not None else (x, x)
        return x

    return finalise
