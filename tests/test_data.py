"""Tests for keras_zoo.data: every source and target mode, splits, seeding, stage order, augmentation,
corruption, folders, TFDS (mocked) and error messages. Tiny data sets keep the file fast."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from keras_zoo.data import (  # noqa: E402
    AUGMENTATIONS,
    BUILTIN_SOURCES,
    DatasetInfo,
    Splits,
    load_dataset,
    load_splits,
)
from keras_zoo.data.builtin import load_builtin  # noqa: E402
from keras_zoo.data.sources import parse_source  # noqa: E402

SMALL_SHAPES = "shapes:count=240,size=24"


# === Helpers ===


def collect(ds):
    """Concatenate every batch of `ds` into numpy arrays (a tuple, or one array for targets='none')."""
    parts = None
    for batch in ds:
        batch = batch if isinstance(batch, tuple) else (batch,)
        if parts is None:
            parts = [[] for _ in batch]
        for store, value in zip(parts, batch):
            store.append(value.numpy())
    arrays = tuple(np.concatenate(p) for p in parts)
    return arrays if len(arrays) > 1 else arrays[0]


def stage_names(ds):
    """The chain of tf.data stages from source to output (follows the example side of a zip)."""
    names = []
    while True:
        names.append(type(ds).__name__.strip("_"))
        if hasattr(ds, "_input_dataset"):
            ds = ds._input_dataset
        elif hasattr(ds, "_datasets"):
            ds = ds._datasets[0]
        else:
            return names[::-1]


def id_images(n=40, size=8):
    """Images whose every pixel holds the example's id / n, so examples can be recognised after shuffling."""
    ids = np.arange(n)
    x = np.broadcast_to((ids / n)[:, None, None, None], (n, size, size, 3)).astype(np.float32)
    return x, ids.astype(np.int32)


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """28x28 grayscale PNGs of real digits (upscaled from scikit-learn's 8x8), 6 per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digit_folder")
    pixels = {}
    for label in range(10):
        for k, i in enumerate(np.flatnonzero(digits.target == label)[:6]):
            img = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8), "L").resize((28, 28), Image.BILINEAR)
            save_png(root / str(label) / f"{k}.png", np.asarray(img), "L")
            pixels[np.asarray(img).tobytes()] = label
    return root, pixels


# === Built-in sources ===


@pytest.mark.parametrize(
    "source,targets",
    [("digits", "label"), ("digits", "image"), ("digits", "none"), (SMALL_SHAPES, "label"),
     (SMALL_SHAPES, "mask"), (SMALL_SHAPES, "image"), (SMALL_SHAPES, "none"),
     ("moons:count=200", "label"), ("spirals:count=200", "label"), ("spirals:count=200", "none")],
)
def test_builtin_sources_shapes_dtypes_and_ranges(source, targets):
    splits = load_splits(source, targets=targets, batch_size=50)
    info = splits.info
    assert isinstance(splits, Splits) and isinstance(info, DatasetInfo)
    assert info.targets == targets and info.name == source.split(":")[0]
    for split in ("train", "validation", "test"):
        data = collect(getattr(splits, split))
        x = data[0] if isinstance(data, tuple) else data
        assert x.dtype == np.float32 and x.shape == (info.num_examples[split],) + info.input_shape
        lo, hi = info.value_range
        assert lo - 1e-6 <= x.min() and x.max() <= hi + 1e-6
        if targets == "label":
            y = data[1]
            assert y.dtype == np.int32 and y.shape == (len(x),)
            assert 0 <= y.min() and y.max() < info.num_classes == len(info.class_names)
        elif targets == "mask":
            mask = data[1]
            assert mask.dtype == np.int32 and mask.shape == x.shape[:3]
            assert 0 <= mask.min() and mask.max() < info.num_classes == len(info.class_names)
        elif targets == "image":
            np.testing.assert_array_equal(data[0], data[1])
        else:
            assert info.num_classes is None and info.class_names == ()
    if info.input_shape != (2,):
        assert info.value_range == (0.0, 1.0)
    # A batch of the first split is batched as asked.
    first = next(iter(splits.train))
    first_x = first[0] if isinstance(first, tuple) else first
    assert first_x.shape[0] == min(50, info.num_examples["train"])


def test_digits_are_sklearn_digits_scaled_to_unit_range():
    splits = load_splits("digits", validation_fraction=0.1, test_fraction=0.2)
    info = splits.info
    assert info.input_shape == (8, 8, 1) and info.num_classes == 10
    assert info.class_names == tuple(str(i) for i in range(10))
    assert sum(info.num_examples.values()) == 1797
    x, _ = collect(splits.test)
    assert x.max() == 1.0 and x.min() == 0.0
    # Values are multiples of 1/16: 17 levels, which the info records for discrete likelihoods.
    np.testing.assert_allclose(x * 16, np.round(x * 16), atol=1e-5)
    assert info.levels == 17


def test_shapes_generator_is_deterministic_and_learnable_by_construction():
    a = load_builtin("shapes", {"count": 500, "classes": 5}, seed=3)
    b = load_builtin("shapes", {"count": 500, "classes": 5}, seed=3)
    c = load_builtin("shapes", {"count": 500, "classes": 5}, seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (500, 32, 32, 3) and a.x.dtype == np.float32
    assert a.class_names == ("circle", "square", "triangle", "cross", "ellipse")
    assert a.mask_class_names[0] == "background"
    assert np.bincount(a.labels).min() == 100  # balanced
    for label, mask in zip(a.labels, a.masks):
        assert set(np.unique(mask)) == {0, label + 1}  # one shape, class id = label + 1
        rows, cols = np.nonzero(mask)
        assert np.ptp(rows) + 1 >= 8 and np.ptp(cols) + 1 >= 8  # at least ~8 px across
    # The shape differs in colour from its background in every channel.
    for x, mask in zip(a.x[:50], a.masks[:50]):
        inside, outside = x[mask > 0].mean(0), x[mask == 0].mean(0)
        assert np.all(np.abs(inside - outside) > 0.2)
    gray = load_builtin("shapes", {"count": 10, "channels": 1, "size": 16, "noise": 0.0}, seed=0)
    assert gray.x.shape == (10, 16, 16, 1)


def test_points_are_standardised_and_balanced():
    for name in ("moons", "spirals"):
        arrays = load_builtin(name, {"count": 400, "noise": 0.05}, seed=0)
        assert arrays.x.shape == (400, 2) and arrays.x.dtype == np.float32
        np.testing.assert_allclose(arrays.x.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(arrays.x.std(0), 1.0, atol=1e-4)
        assert np.bincount(arrays.labels).tolist() == [200, 200]
    assert set(BUILTIN_SOURCES) == {"digits", "shapes", "moons", "spirals", "series"}


def test_source_string_options_are_parsed_and_converted():
    assert parse_source("shapes:size=64,count=2000,noise=0.1,x=abc") == (
        "shapes", {"size": 64, "count": 2000, "noise": 0.1, "x": "abc"})
    assert parse_source("mnist:3.*.*") == ("mnist:3.*.*", {})
    splits = load_splits("shapes:size=20,count=100,classes=4", targets="mask")
    assert splits.info.input_shape == (20, 20, 3) and splits.info.num_classes == 5
    assert sum(splits.info.num_examples.values()) == 100
    # Explicit options override the string's.
    assert sum(load_splits("shapes:count=100", options={"count": 60}).info.num_examples.values()) == 60


# === Splits and seeding ===


def test_splits_add_up_are_disjoint_and_stratified():
    x, ids = id_images(200)
    labels = ids % 4
    splits = load_splits((x, labels), validation_fraction=0.1, test_fraction=0.25, batch_size=32)
    assert splits.info.num_examples == {"train": 130, "validation": 20, "test": 50}
    members = {}
    for split in ("train", "validation", "test"):
        xs, ys = collect(getattr(splits, split))
        found = np.round(xs[:, 0, 0, 0] * 200).astype(int)
        np.testing.assert_array_equal(found % 4, ys)  # labels travel with their images
        members[split] = set(found)
        assert np.ptp(np.bincount(ys, minlength=4)) <= 1  # stratified
    assert not (members["train"] & members["validation"]) and not (members["train"] & members["test"])
    assert not (members["validation"] & members["test"])
    assert members["train"] | members["validation"] | members["test"] == set(range(200))


def test_same_seed_same_splits_and_epoch_different_seed_different():
    kwargs = dict(batch_size=64, augment=("flip", "rotate"))
    a = load_splits(SMALL_SHAPES, seed=7, **kwargs)
    b = load_splits(SMALL_SHAPES, seed=7, **kwargs)
    c = load_splits(SMALL_SHAPES, seed=8, **kwargs)
    for split in ("train", "validation", "test"):
        for got, want in zip(collect(getattr(a, split)), collect(getattr(b, split))):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(collect(a.train)[0], collect(c.train)[0])
    assert not np.array_equal(collect(a.test)[0], collect(c.test)[0])
    # Numpy sources: membership comes from the seed (the data themselves are fixed).
    x, ids = id_images(100)
    tests = [collect(load_splits((x, ids % 2), seed=s).test)[1] for s in (1, 1, 2)]
    assert tests[0].tolist() == tests[1].tolist()
    members = [set(np.round(collect(load_splits((x, ids % 2), seed=s).test)[0][:, 0, 0, 0] * 100).astype(int))
               for s in (1, 2)]
    assert members[0] != members[1]


def test_train_reshuffles_each_epoch_validation_never_shuffles():
    x, ids = id_images(60)
    splits = load_splits((x, ids), validation_fraction=0.2, test_fraction=0.2, batch_size=8, seed=0)
    first, second = collect(splits.train)[1], collect(splits.train)[1]
    assert sorted(first) == sorted(second) and first.tolist() != second.tolist()
    val = collect(splits.validation)[1]
    assert val.tolist() == sorted(val) == collect(splits.validation)[1].tolist()


# === Stage order and augmentation ===


def test_stage_order_is_decode_cache_shuffle_batch_augment_prefetch():
    splits = load_splits(SMALL_SHAPES, augment=("flip",))
    train = stage_names(splits.train)
    # Normalising and augmenting run on whole batches, after the cache and the shuffle.
    assert train[train.index("CacheDataset"):] == [
        "CacheDataset", "ShuffleDataset", "BatchDataset", "ZipDataset", "ParallelMapDataset", "PrefetchDataset",
        "OptionsDataset"]
    assert train.index("ParallelMapDataset") < train.index("CacheDataset")  # decoding before the cache
    validation = stage_names(splits.validation)
    assert "ShuffleDataset" not in validation
    assert validation[-5:] == ["CacheDataset", "BatchDataset", "ParallelMapDataset", "PrefetchDataset", "OptionsDataset"]
    no_cache = stage_names(load_splits(SMALL_SHAPES, cache=False).train)
    assert "CacheDataset" not in no_cache and "ShuffleDataset" in no_cache
    # A corruption is a per-example callable: then the map runs per example, before batching.
    corrupted = stage_names(load_splits(SMALL_SHAPES, targets="image", corruption=_noise_corruption).train)
    assert corrupted[-5:] == ["ZipDataset", "ParallelMapDataset", "BatchDataset", "PrefetchDataset", "OptionsDataset"]


def test_every_split_runs_with_the_tf_data_autotuner_off():
    # With the autotuner on, whole epochs ran on one of two cores about half the time (see
    # keras_zoo.data.pipeline._pipeline_options); every finished pipeline turns it off.
    plain = load_splits(SMALL_SHAPES, augment=("flip",))
    corrupted = load_splits(SMALL_SHAPES, targets="image", corruption=_noise_corruption)
    for splits in (plain, corrupted):
        for ds in (splits.train, splits.validation, splits.test):
            assert ds.options().autotune.enabled is False
    # Parallel stages still run in parallel (AUTOTUNE without the autotuner: one call per core).
    assert "ParallelMapDataset" in stage_names(plain.train)


def test_cached_examples_are_augmented_afresh_each_epoch():
    x, ids = id_images(30)
    x = x + np.linspace(0, 0.02, 8, dtype=np.float32)[None, None, :, None]  # not flip-invariant
    kwargs = dict(validation_fraction=0.0, test_fraction=0.0, batch_size=8, seed=0)

    def epoch_by_id(ds):
        xs, ys = collect(ds)
        return xs[np.argsort(ys)]

    plain = load_splits((x, ids), **kwargs)
    np.testing.assert_array_equal(epoch_by_id(plain.train), epoch_by_id(plain.train))
    np.testing.assert_allclose(epoch_by_id(plain.train), x)
    augmented = load_splits((x, ids), augment=("flip", "translate:0.3"), **kwargs)
    one, two = epoch_by_id(augmented.train), epoch_by_id(augmented.train)
    assert not np.allclose(one, two)


def test_augmentation_changes_train_but_never_validation_or_test():
    plain = load_splits(SMALL_SHAPES, seed=2)
    augmented = load_splits(SMALL_SHAPES, seed=2, augment=("flip", "rotate:0.2", "zoom", "contrast"))
    x_plain, y_plain = collect(plain.train)
    x_aug, y_aug = collect(augmented.train)
    np.testing.assert_array_equal(y_plain, y_aug)  # same order: augmentation does not touch the shuffle
    changed = np.abs(x_plain - x_aug).reshape(len(x_aug), -1).max(1) > 1e-3
    assert changed.mean() > 0.9
    assert x_aug.min() >= 0.0 and x_aug.max() <= 1.0
    for split in ("validation", "test"):
        for got, want in zip(collect(getattr(augmented, split)), collect(getattr(plain, split))):
            np.testing.assert_array_equal(got, want)


def test_mask_augmentation_moves_mask_with_image():
    def ious(augment):
        splits = load_splits("shapes:count=120,size=32,noise=0.0", targets="mask", seed=1, augment=augment)
        x, mask = collect(splits.train)
        assert set(np.unique(mask)) <= {0, 1, 2, 3}  # nearest interpolation: no new class ids
        found = []
        for image, m in zip(x, mask):
            padding = np.all(image == 0.0, axis=-1)  # "crop" pads with zeros; the mask must say background
            assert not np.any(m[padding])
            bright, shape = image.mean(-1) > 0.5, m > 0
            if shape.any():
                # The shape is the bright or the dark part of the image, whichever the mask mostly covers.
                predicted = (bright if bright[shape].mean() > 0.5 else ~bright) & ~padding
                found.append((predicted & shape).sum() / (predicted | shape).sum())
        return np.array(found)

    geometric = ious(("flip", "flip_vertical", "rotate:0.2", "zoom:0.2", "translate"))
    assert len(geometric) > 60 and np.median(geometric) > 0.9
    assert np.median(ious(("crop",))) > 0.9


def test_augmentations_registry_and_validation():
    for name, make in AUGMENTATIONS.items():
        assert isinstance(make(seed=1), keras.layers.Layer), name
    assert isinstance(AUGMENTATIONS["flip"](), keras.layers.RandomFlip)
    assert AUGMENTATIONS["rotate"](0.2).factor == (-0.2, 0.2)
    with pytest.raises(ValueError, match="Unknown augmentation 'spin'.*flip.*rotate"):
        load_splits("digits", augment=("spin",))
    with pytest.raises(ValueError, match="not a number"):
        load_splits("digits", augment=("rotate:lots",))
    with pytest.raises(ValueError, match="takes no strength"):
        load_splits("digits", augment=("flip:0.5",))
    with pytest.raises(ValueError, match="apply to images"):
        load_splits("moons", augment=("flip",))


# === Corruption hook ===


def _noise_corruption(x, seed):
    assert seed.shape == (2,)
    noise = tf.random.stateless_uniform(tf.shape(x), seed)
    return noise, x


def test_corruption_is_fixed_for_eval_and_fresh_per_epoch_for_train():
    x, ids = id_images(40)
    kwargs = dict(targets="image", batch_size=8, seed=5, validation_fraction=0.25, test_fraction=0.25)
    splits = load_splits((x,), corruption=_noise_corruption, **kwargs)
    again = load_splits((x,), corruption=_noise_corruption, **kwargs)
    clean = load_splits((x,), **kwargs)
    for split in ("validation", "test"):
        noisy, target = collect(getattr(splits, split))
        np.testing.assert_array_equal(target, collect(getattr(clean, split))[1])  # target is the clean image
        np.testing.assert_array_equal(noisy, collect(getattr(splits, split))[0])  # same every pass
        np.testing.assert_array_equal(noisy, collect(getattr(again, split))[0])  # same every pipeline
        assert not np.allclose(noisy, target)
    noisy_val, noisy_test = collect(splits.validation)[0], collect(splits.test)[0]
    assert not np.allclose(noisy_val[:4], noisy_test[:4])  # validation and test draw different noise

    def train_noise_by_id(ds):
        noisy, target = collect(ds)
        order = np.argsort(target[:, 0, 0, 0])
        return noisy[order]

    first = train_noise_by_id(splits.train)
    np.testing.assert_array_equal(first, train_noise_by_id(again.train))  # same seed, same first epoch
    assert not np.allclose(first, train_noise_by_id(splits.train))  # a new draw next epoch
    with pytest.raises(ValueError, match="targets='image'"):
        load_splits("digits", corruption=_noise_corruption)


def test_corruption_runs_after_augmentation():
    seen = []

    def record(x, seed):
        seen.append(x.shape)
        return x * 0.0, x

    splits = load_splits(SMALL_SHAPES, targets="image", augment=("flip",), corruption=record)
    inputs, targets = next(iter(splits.train))
    assert float(tf.reduce_max(inputs)) == 0.0 and float(tf.reduce_max(targets)) > 0.0
    assert seen and all(tuple(s) == (24, 24, 3) for s in seen)


# === Resizing and colour ===


def test_image_size_and_color_mode():
    splits = load_splits("digits", image_size=(16, 12), color_mode="rgb", batch_size=16)
    assert splits.info.input_shape == (16, 12, 3)
    x, _ = next(iter(splits.test))
    assert x.shape == (16, 16, 12, 3)
    np.testing.assert_allclose(x[..., 0], x[..., 2])
    gray = load_splits(SMALL_SHAPES, targets="mask", image_size=(12, 12), color_mode="grayscale")
    assert gray.info.input_shape == (12, 12, 1)
    x, mask = collect(gray.validation)
    assert x.shape[1:] == (12, 12, 1) and mask.shape[1:] == (12, 12)
    assert set(np.unique(mask)) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="images only"):
        load_splits("moons", image_size=(4, 4))


# === Numpy sources ===


def test_numpy_sources():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 10, 10), dtype=np.uint8)
    splits = load_splits((images, np.arange(50) % 5), batch_size=10)
    assert splits.info.input_shape == (10, 10, 1) and splits.info.num_classes == 5
    x, y = collect(splits.test)
    assert x.max() <= 1.0 and x.dtype == np.float32
    assert splits.info.levels == 256  # uint8 images
    # Unlabelled: (x,) or a bare array.
    assert collect(load_splits((images,), targets="none").train).shape[1:] == (10, 10, 1)
    assert collect(load_dataset(images, "train", targets="none", batch_size=7)).shape[1:] == (10, 10, 1)
    with pytest.raises(ValueError, match="cannot give targets='label'"):
        load_splits(images)
    # Masks from numpy.
    masks = rng.integers(0, 3, (50, 10, 10))
    seg = load_splits((images, masks), targets="mask", options={"class_names": ["bg", "a", "b"]})
    assert seg.info.num_classes == 3 and seg.info.class_names == ("bg", "a", "b")
    assert collect(seg.train)[1].shape[1:] == (10, 10)
    # Features are used as they are; their range is recorded.
    feats = rng.normal(size=(30, 4)).astype(np.float32)
    tab = load_splits((feats, np.arange(30) % 2))
    assert tab.info.input_shape == (4,) and tab.info.value_range == (float(feats.min()), float(feats.max()))
    assert tab.info.levels is None
    assert load_splits((images / 255.0,), targets="none").info.levels is None  # float images: continuous
    with pytest.raises(ValueError, match="must lie in"):
        load_splits((images.astype(np.float32) * 10,), targets="none")
    with pytest.raises(ValueError, match="examples but y has"):
        load_splits((images, np.arange(3)))


# === Image folders ===


def test_folder_of_class_subfolders_grayscale_28(digit_folder):
    root, pixels = digit_folder
    splits = load_splits(root, batch_size=16, seed=0)  # a pathlib.Path
    info = splits.info
    assert info.input_shape == (28, 28, 1) and info.class_names == tuple(str(i) for i in range(10))
    assert info.num_examples == {"train": 42, "validation": 6, "test": 12}
    for split in ("train", "validation", "test"):
        x, y = collect(getattr(splits, split))
        assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32 and x.max() <= 1.0
        for image, label in zip(x, y):
            assert pixels[np.round(image[..., 0] * 255).astype(np.uint8).tobytes()] == label
    as_str = load_splits(str(root), batch_size=16, seed=0)
    np.testing.assert_array_equal(collect(as_str.test)[1], collect(splits.test)[1])
    with pytest.raises(ValueError, match="cannot give targets='mask'"):
        load_splits(root, targets="mask")


def _cache_stage(ds):
    while type(ds).__name__.strip("_") != "CacheDataset":
        ds = ds._input_dataset if hasattr(ds, "_input_dataset") else ds._datasets[0]
    return ds


def test_the_cache_holds_bytes_and_over_budget_goes_to_files_or_nowhere_with_identical_batches(
        digit_folder, caplog):
    root, _ = digit_folder
    caplog.set_level("INFO", logger="keras_zoo.data.cache")
    results, messages = {}, {}
    for name, kwargs in (("memory", {}), ("file", {"cache_budget": 0}), ("none", {"cache": "none"})):
        caplog.clear()
        splits = load_splits(root, batch_size=16, seed=0, augment=("translate",), **kwargs)
        results[name] = [collect(getattr(splits, split)) for split in ("train", "validation", "test")]
        (messages[name],) = [r.getMessage() for r in caplog.records if r.name == "keras_zoo.data.cache"]
        if name != "none":  # 60 images of 28x28x1 kept as uint8, normalised after the cache
            assert _cache_stage(splits.train).element_spec["x"].dtype == tf.uint8
            assert "47.3 KB decoded" in messages[name]  # (784 + 4-byte label) x 60
    assert "within the memory budget" in messages["memory"] and "caching in memory" in messages["memory"]
    assert "over the memory budget of 0 B" in messages["file"]
    folder = messages["file"].rpartition("caching in files under ")[2]
    assert sorted(os.listdir(folder))[0].startswith("cache.test")  # written while the splits were read
    assert "not caching" in messages["none"] and "cache='none'" in messages["none"]
    for name in ("file", "none"):
        for got, want in zip(results[name], results["memory"]):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
    x, y = results["memory"][0]
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    for bad in ({"cache": 3}, {"cache": ""}, {"cache_budget": -1}):
        with pytest.raises(ValueError, match="cache"):
            load_splits(root, **bad)


def test_folder_with_mismatched_sizes_is_resized_with_a_warning(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for k in range(12):
        size = (24, 30) if k == 5 else (20, 16)  # (width, height) differs for one image
        array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        save_png(tmp_path / ("a" if k % 2 else "b") / f"{k:02d}.png", array)
    with caplog.at_level(logging.WARNING, logger="keras_zoo.data.sources"):
        splits = load_splits(tmp_path, targets="none", batch_size=4)
    assert splits.info.input_shape == (16, 20, 3)  # the first image's (height, width)
    assert any("differ from the first image's size" in r.message for r in caplog.records)
    total = sum(len(collect(getattr(splits, s))) for s in ("train", "validation", "test"))
    assert total == 12
    resized = load_splits(tmp_path, image_size=(8, 8), color_mode="grayscale", targets="image")
    assert collect(resized.train)[0].shape[1:] == (8, 8, 1)


def test_folder_with_train_test_subfolders(tmp_path):
    rng = np.random.default_rng(1)
    counts = {"train": 10, "test": 4}
    for split, n in counts.items():
        for cls in ("cat", "dog"):
            for k in range(n):
                save_png(tmp_path / split / cls / f"{k}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    splits = load_splits(tmp_path, validation_fraction=0.2, test_fraction=0.5)
    assert splits.info.class_names == ("cat", "dog")
    assert splits.info.num_examples == {"train": 16, "validation": 4, "test": 8}
    assert sorted(collect(splits.validation)[1].tolist()) == [0, 0, 1, 1]  # carved by label
    for k in range(3):
        save_png(tmp_path / "validation" / "dog" / f"{k}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    given = load_splits(tmp_path)
    assert given.info.num_examples == {"train": 20, "validation": 3, "test": 8}
    assert collect(given.validation)[1].tolist() == [1, 1, 1]
    save_png(tmp_path / "test" / "bird" / "0.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="bird"):
        load_splits(tmp_path)


def test_folder_of_images_and_masks(tmp_path):
    rng = np.random.default_rng(2)
    stored = {}
    for k in range(20):
        image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (12, 12), dtype=np.uint8)
        save_png(tmp_path / "images" / f"img{k}.png", image)
        if k == 0:  # a palette PNG must keep its indices, not its colours
            palette = Image.fromarray(mask, "P")
            palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
            (tmp_path / "masks").mkdir(exist_ok=True)
            palette.save(tmp_path / "masks" / f"img{k}.png")
        else:
            save_png(tmp_path / "masks" / f"img{k}.png", mask, "L")
        stored[image.tobytes()] = mask
    splits = load_splits(tmp_path, targets="mask", batch_size=8)
    assert splits.info.input_shape == (12, 12, 3) and splits.info.num_classes == 3
    assert sum(splits.info.num_examples.values()) == 20
    for split in ("train", "validation", "test"):
        x, masks = collect(getattr(splits, split))
        assert masks.dtype == np.int32
        for image, mask in zip(x, masks):
            np.testing.assert_array_equal(mask, stored[np.round(image * 255).astype(np.uint8).tobytes()])
    assert load_splits(tmp_path, targets="mask", options={"num_classes": 5}).info.num_classes == 5
    assert collect(load_splits(tmp_path, targets="image").train)[0].shape[1:] == (12, 12, 3)
    with pytest.raises(ValueError, match="cannot give targets='label'"):
        load_splits(tmp_path)


# === TFDS (mocked: no downloads) ===


def test_tfds_mnist_under_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        splits = load_splits("mnist", batch_size=5)
        info = splits.info
        assert info.input_shape == (28, 28, 1) and info.num_classes == 10 and info.name == "mnist"
        assert info.levels == 256
        x, y = collect(splits.train)
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
        assert y.dtype == np.int32 and 0 <= y.min() and y.max() < 10
        assert len(x) == info.num_examples["train"] > 0
        rgb = load_splits("tfds:mnist", targets="image", image_size=(14, 14), color_mode="rgb")
        inputs, targets = next(iter(rgb.validation))
        assert inputs.shape[1:] == (14, 14, 3)
        np.testing.assert_array_equal(inputs, targets)


def test_tfds_pet_masks_under_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        splits = load_splits("oxford_iiit_pet", targets="mask", batch_size=3, augment=("flip",))
        assert splits.info.input_shape == (128, 128, 3) and splits.info.num_classes == 3
        x, mask = collect(splits.train)
        assert x.shape[1:] == (128, 128, 3) and mask.shape[1:] == (128, 128) and mask.dtype == np.int32
        assert set(np.unique(mask)) <= {0, 1, 2}
        small = load_splits("oxford_iiit_pet", targets="label", image_size=(32, 32))
        assert small.info.input_shape == (32, 32, 3) and small.info.num_classes == 37


def _pet_trimaps(self, split, **kwargs):
    """Mock pet examples: a 20x30 image whose trimap columns hold 1 (pet), 2 (background), 3 (border)."""
    n = 4
    trimap = np.ones((n, 20, 30, 1), np.uint8)
    trimap[:, :, 10:20], trimap[:, :, 20:] = 2, 3
    return tf.data.Dataset.from_tensor_slices({
        "image": np.full((n, 20, 30, 3), 51, np.uint8), "segmentation_mask": trimap,
        "label": np.arange(n, dtype=np.int64), "species": np.zeros(n, np.int64),
        "file_name": np.array([b"a.jpg"] * n), "head_bbox": np.zeros((n, 4), np.float32)})


def test_tfds_pet_trimap_becomes_class_ids():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(as_dataset_fn=_pet_trimaps):
        splits = load_splits("oxford_iiit_pet", targets="mask", image_size=(40, 60))
        assert splits.info.class_names == ("pet", "background", "border")
        x, mask = collect(splits.test)
    np.testing.assert_allclose(x, 0.2, atol=1e-6)
    assert mask.shape == (4, 40, 60)
    np.testing.assert_array_equal(mask[:, :, :20], 0)
    np.testing.assert_array_equal(mask[:, :, 20:40], 1)
    np.testing.assert_array_equal(mask[:, :, 40:], 2)


# === Errors ===


def test_unknown_source_suggests_close_matches():
    with pytest.raises(ValueError, match=r"'digts'.*digits, shapes, moons, spirals.*Did you mean 'digits'"):
        load_splits("digts")
    with pytest.raises(ValueError, match="Did you mean 'mnist'"):
        load_splits("mnsit")
    with pytest.raises(ValueError, match="no such folder"):
        load_splits("./no/such/folder")


def test_clear_errors_for_bad_arguments():
    with pytest.raises(ValueError, match="'digits' cannot give targets='mask'"):
        load_splits("digits", targets="mask")
    with pytest.raises(ValueError, match=r"Unknown option\(s\) \['sizes'\].*size=32"):
        load_splits("shapes:sizes=3")
    with pytest.raises(ValueError, match="classes=9"):
        load_splits("shapes:classes=9")
    with pytest.raises(ValueError, match="Unknown targets"):
        load_splits("digits", targets="labels")
    with pytest.raises(ValueError, match="Unknown split"):
        load_dataset("digits", split="val")
    with pytest.raises(ValueError, match="validation_fraction"):
        load_splits("digits", validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(FileNotFoundError):
        import pathlib

        load_splits(pathlib.Path("/no/such/folder"))


def test_load_dataset_is_one_split_of_load_splits():
    got = collect(load_dataset("digits", "validation", seed=3, batch_size=100))
    want = collect(load_splits("digits", seed=3, batch_size=100).validation)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_data_module_does_not_import_models_recipes_or_registry():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "keras_zoo" / "data"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"keras_zoo\.(models|recipes|registry)|from \.\.(models|recipes|registry)", text), path


def _tiny_tfds_builder():
    """A real TFDS builder (registered once) whose data is generated in-process: preparing it goes
    through TFDS's download-and-prepare and read paths, with no network."""
    import tensorflow_datasets as tfds

    if "zoo_tiny_digits" in tfds.list_builders():
        return tfds.builder_cls("zoo_tiny_digits")

    class ZooTinyDigits(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=["dark", "bright"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(40, 0), "test": self._generate_examples(10, 1)}

        def _generate_examples(self, n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
                label = i % 2
                image = rng.integers(0, 100, size=(8, 8, 1)) + 150 * label
                yield i, {"image": image.astype("uint8"), "label": label}

    return ZooTinyDigits


def test_tfds_source_reads_a_prepared_data_dir_through_the_real_tfds_path(tmp_path):
    builder_cls = _tiny_tfds_builder()
    builder_cls(data_dir=str(tmp_path)).download_and_prepare()
    splits = load_splits("tfds:zoo_tiny_digits", data_dir=str(tmp_path), batch_size=8)
    assert splits.info.class_names == ("dark", "bright") and splits.info.input_shape == (8, 8, 1)
    assert splits.info.num_examples["test"] == 10
    assert splits.info.num_examples["train"] + splits.info.num_examples["validation"] == 40
    x, y = collect(splits.test)
    # The generator made bright images for label 1: the pixels decode to the same classes.
    assert np.all((x.reshape(len(x), -1).mean(axis=1) > 0.5) == (y == 1))


def test_tfds_name_offline_is_one_actionable_line(tmp_path, monkeypatch):
    import requests
    import tensorflow_datasets as tfds

    def no_network(self, *args, **kwargs):
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='storage.googleapis.com', port=443): Max retries exceeded\nmore")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    with pytest.raises(ValueError) as err:
        load_splits("mnist", data_dir=str(tmp_path / "empty"))
    message = str(err.value)
    assert "'mnist' is not prepared in" in message and str(tmp_path / "empty") in message
    assert "ConnectionError" in message and "data_dir=DIR" in message and "--data-dir" in message
    assert "\n" not in message
