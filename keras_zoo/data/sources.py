"""Where examples come from: built-in offline sets, numpy arrays, image folders and TFDS.

`load_raw` resolves a source and returns `RawSplits`: one unbatched tf.data pipeline per split whose
elements are dicts {"x"} / {"x", "y"} / {"x", "mask"}, with "x" decoded, resized and colour-converted,
"y" an int32 label and "mask" int32 (H, W) class ids. These are the pipeline stages before the cache, so
"x" stays in its compact stored form there (uint8 for 8-bit images) and `RawSplits.restore`, applied
after the cache, turns it into float32 inputs; `keras_zoo.data.pipeline` adds the rest.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_zoo.data.builtin import BUILTIN_SOURCES, ArraySet, load_builtin
from keras_zoo.data.checks import check_finite, image_header, scan_images

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_AUTOTUNE = tf.data.AUTOTUNE

# TFDS data sets whose per-pixel masks we know how to read: mask feature, value offset, class names.
# The Oxford-IIIT pet trimap stores 1 = pet, 2 = background, 3 = border.
TFDS_MASKS = {"oxford_iiit_pet": ("segmentation_mask", -1, ("pet", "background", "border"))}
# Default image size for TFDS sets whose images vary in size.
TFDS_DEFAULT_SIZE = {"oxford_iiit_pet": (128, 128)}


@dataclasses.dataclass(frozen=True)
class Request:
    """What the caller asked for; every source reader honours all of it or raises ValueError."""

    targets: str = "label"
    image_size: tuple | None = None
    color_mode: str | None = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    data_dir: str | None = None


@dataclasses.dataclass
class RawSplits:
    """Unbatched train/validation/test datasets of a source, before the pipeline stages."""

    datasets: dict
    num_examples: dict
    name: str
    input_shape: tuple
    num_classes: int | None
    class_names: tuple
    value_range: tuple = (0.0, 1.0)
    levels: int | None = None
    # Stored "x" (any shape, a single example or a batch) -> float32 inputs; applied after the cache.
    restore: object = None


# === Resolving a source ===


def parse_source(source: str) -> tuple[str, dict]:
    """Split "name:key=value,key=value" into the name and an options dict (ints/floats/bools converted).

    A colon not followed by key=value pairs stays in the name, so TFDS versions ("mnist:3.*.*") pass through.
    """
    name, sep, tail = source.partition(":")
    if not sep or "=" not in tail:
        return source, {}
    options = {}
    for item in tail.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key:
            raise ValueError(f"Bad option {item!r} in source {source!r}; write options as 'name:key=value,key=value'.")
        options[key] = _convert_option(value)
    return name, options


def _convert_option(value: str):
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def load_raw(source, request: Request, options: dict | None = None) -> RawSplits:
    """Resolve `source` (builtin name, numpy arrays, folder path or TFDS name) into per-split pipelines."""
    options = dict(options or {})
    if isinstance(source, (tuple, list, np.ndarray, tf.Tensor)):
        return _array_splits(_numpy_arrays(source, request.targets, options), "numpy", request)
    if isinstance(source, os.PathLike):
        if not os.path.isdir(source):
            raise FileNotFoundError(f"Image folder {os.fspath(source)!r} does not exist or is not a directory.")
        return _folder_splits(pathlib.Path(source), request, options)
    if not isinstance(source, str):
        raise ValueError(
            f"Unsupported data source {source!r} of type {type(source).__name__}: pass a builtin name "
            f"({', '.join(BUILTIN_SOURCES)}), a TFDS name, a folder path or a tuple of numpy arrays."
        )
    if os.path.isdir(os.path.expanduser(source)):
        return _folder_splits(pathlib.Path(os.path.expanduser(source)), request, options)
    force_tfds = source.startswith("tfds:")
    name, string_options = parse_source(source[5:] if force_tfds else source)
    # Explicit `options=` override the same keys given in the string.
    options = {**string_options, **options}
    if not force_tfds and name in BUILTIN_SOURCES:
        return _builtin_splits(name, request, options)
    return _tfds_splits(name, source, request, options)


def _unknown_source(name: str, source: str) -> ValueError:
    import tensorflow_datasets as tfds

    candidates = list(BUILTIN_SOURCES) + list(tfds.list_builders())
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    looks_like_path = os.sep in source or source.startswith((".", "~"))
    what = "no such folder, and not" if looks_like_path else "not"
    return ValueError(
        f"Unknown data source {source!r}: {what} a builtin ({', '.join(BUILTIN_SOURCES)}), an existing "
        f"image folder, or a TFDS data set.{hint}"
    )


# === Splitting ===


def split_indices(n: int, labels, validation_fraction: float, test_fraction: float, seed: int):
    """Seeded (train, validation, test) index arrays, stratified by `labels` when given; each sorted.

    Split sizes are round(n * fraction) overall; the per-class shares are apportioned by largest
    remainder (ties broken by the seed), so stratifying never changes the totals.
    """
    # A stream of its own: builtins generate their data from default_rng(seed), and splitting must not
    # replay those same draws.
    rng = np.random.default_rng([seed, 1])
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    groups = [rng.permutation(g) for g in groups]
    sizes = np.array([len(g) for g in groups])
    n_test = _apportion(sizes, test_fraction, rng)
    n_val = _apportion(sizes - n_test, validation_fraction / (1.0 - test_fraction), rng,
                       total=int(np.floor(n * validation_fraction + 0.5)))
    parts = {"train": [], "validation": [], "test": []}
    for group, t, v in zip(groups, n_test, n_val):
        parts["test"].append(group[:t])
        parts["validation"].append(group[t:t + v])
        parts["train"].append(group[t + v:])
    return tuple(np.sort(np.concatenate(parts[s])).astype(np.int64) for s in SPLITS)


def _apportion(sizes, fraction, rng, total=None):
    """Integers near sizes * fraction, summing to `total` (default round(sum * fraction)), each <= size."""
    if total is None:
        total = int(np.floor(sizes.sum() * fraction + 0.5))
    total = min(total, int(sizes.sum()))
    exact = sizes * fraction
    counts = np.minimum(np.floor(exact).astype(int), sizes)
    short = total - int(counts.sum())
    if short > 0:
        # Largest fractional parts first; a random key breaks ties so no class is always favoured.
        order = np.lexsort((rng.random(len(sizes)), -(exact - counts)))
        order = [i for i in order if counts[i] < sizes[i]]
        counts[order[:short]] += 1
    return counts


def _check_targets(targets: str, available: tuple, name: str):
    if targets not in available:
        raise ValueError(
            f"Source {name!r} cannot give targets={targets!r}; it offers targets in {available}."
        )


def _class_info(request: Request, class_names: tuple, mask_class_names: tuple = ()):
    if request.targets == "label":
        return len(class_names), tuple(class_names)
    if request.targets == "mask":
        return len(mask_class_names), tuple(mask_class_names)
    return None, ()


# === Images: colour and size ===


def _output_channels(source_channels: int, color_mode, name: str) -> int:
    if color_mode is None:
        return source_channels
    channels = {"grayscale": 1, "rgb": 3}[color_mode]
    if source_channels not in (1, 3, 4):
        raise ValueError(f"Source {name!r} has {source_channels} channels; color_mode={color_mode!r} needs 1, 3 or 4.")
    return channels


def _convert_image(x, channels: int, size=None):
    """Float image (H, W, C) to `channels` channels and, when `size` is given, to that size (bilinear)."""
    have = x.shape[-1]
    if have == 4 and channels != 4:
        x = x[..., :3]  # drop alpha
        have = 3
    if have == 3 and channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    elif have == 1 and channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    if size is not None:
        x = tf.image.resize(x, size, method="bilinear")
    return x


def _from_bytes(x):
    """uint8 pixels (0..255) -> float32 in [0, 1]: what every 8-bit source restores after the cache."""
    return tf.cast(x, tf.float32) / 255.0


def _to_bytes(x):
    """float32 pixels on the 0..255 scale (after a resize or colour conversion) -> uint8, rounded."""
    return tf.saturate_cast(tf.round(x), tf.uint8)


def _resize_mask(mask, size):
    return tf.image.resize(mask[..., None], size, method="nearest")[..., 0]


# === Arrays: builtins and numpy ===


def _builtin_splits(name: str, request: Request, options: dict) -> RawSplits:
    available = ("label", "image", "none") + (("mask",) if name == "shapes" else ())
    _check_targets(request.targets, available, name)
    arrays = load_builtin(name, options, request.seed)
    return _array_splits(arrays, name, request)


def _numpy_arrays(source, targets: str, options: dict) -> ArraySet:
    unknown = sorted(set(options) - {"num_classes", "class_names"})
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for numpy sources; accepted: num_classes, class_names.")
    if isinstance(source, (tuple, list)):
        if len(source) not in (1, 2):
            raise ValueError(f"A numpy source is (x, y), (x,) or x; got a sequence of {len(source)} items.")
        x, y = source[0], (source[1] if len(source) == 2 else None)
    else:
        x, y = source, None
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"numpy inputs x must be numbers (bool, int or float), got dtype {x.dtype}.")
    check_finite("numpy inputs x", x)
    if x.ndim == 3:
        x = x[..., None]  # (N, H, W) grayscale images
    if x.ndim not in (2, 4):
        raise ValueError(
            f"numpy inputs must be (N, features), (N, H, W) or (N, H, W, C); got shape {x.shape}."
        )
    scale, value_range = _numpy_scale(x)
    levels = None
    if x.ndim == 4 and np.issubdtype(x.dtype, np.bool_):
        levels = 2
    elif x.ndim == 4 and np.issubdtype(x.dtype, np.integer):
        levels = round(1.0 / scale) + 1  # 0..255 -> 256 levels
    available = ("image", "none")
    labels = masks = None
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"numpy source: x has {len(x)} examples but y has {len(y)}.")
        if y.ndim == 4 and y.shape[-1] == 1:
            y = y[..., 0]
        if y.dtype.kind in "USO" and y.ndim in (1, 2) and y.size == len(y):
            # String labels are class names: ids follow `class_names` if given, else sorted order.
            y, names = _named_labels(y.reshape(-1), options.get("class_names"))
            options = {**options, "class_names": names}
        check_finite("numpy targets y", y)
        if y.ndim == 3:
            if x.ndim != 4 or y.shape[1:] != x.shape[1:3]:
                raise ValueError(f"numpy masks of shape {y.shape} do not match images of shape {x.shape}.")
            masks, available = _integer_targets(y, "masks"), available + ("mask",)
        elif y.ndim in (1, 2) and y.size == len(y):
            labels, available = _integer_targets(y.reshape(-1), "labels"), available + ("label",)
        else:
            raise ValueError(f"numpy targets must be labels (N,) or masks (N, H, W); got shape {y.shape}.")
    _check_targets(targets, available, "numpy")
    ids = labels if labels is not None else masks
    names = ()
    if ids is not None:
        num_classes = int(options.get("num_classes", int(ids.max()) + 1 if ids.size else 0))
        names = tuple(str(c) for c in options.get("class_names", [str(i) for i in range(num_classes)]))
        if len(names) != num_classes:
            raise ValueError(f"class_names has {len(names)} names but there are {num_classes} classes.")
        if ids.size and ids.max() >= num_classes:
            raise ValueError(f"numpy targets hold class id {int(ids.max())} but num_classes={num_classes}.")
    return ArraySet(x=x, labels=labels, class_names=names if labels is not None else (),
                    masks=masks, mask_class_names=names if masks is not None else (),
                    scale=scale, value_range=value_range, levels=levels)


def _named_labels(y, class_names=None):
    """String labels -> (int32 ids, class names)."""
    text = np.asarray([str(v) for v in y])
    names = list(class_names) if class_names is not None else sorted(set(text.tolist()))
    index = {str(n): i for i, n in enumerate(names)}
    unknown = sorted(set(text.tolist()) - set(index))
    if unknown:
        raise ValueError(f"numpy labels {unknown[:5]} are not among class_names {names}.")
    return np.asarray([index[t] for t in text], np.int32), [str(n) for n in names]


def _integer_targets(y, what):
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"numpy {what} must be integer class ids; got dtype {y.dtype} with fractions.")
    if y.size and y.min() < 0:
        raise ValueError(f"numpy {what} must be non-negative class ids; found {y.min()}.")
    return y.astype(np.int32)


def _numpy_scale(x):
    """Factor mapping stored values to float32 inputs, and the inputs' value range."""
    if x.ndim == 2:  # tabular features are used as given
        return 1.0, (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    if np.issubdtype(x.dtype, np.bool_):
        return 1.0, (0.0, 1.0)
    if np.issubdtype(x.dtype, np.integer):
        top = 255 if x.size == 0 or x.max() <= 255 else np.iinfo(x.dtype).max
        return 1.0 / top, (0.0, 1.0)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0 + 1e-6:
        return 1.0, (0.0, 1.0)
    if lo >= 0.0 and hi <= 255.0:
        logger.warning("numpy images range over [%g, %g]; dividing by 255 to bring them into [0, 1].", lo, hi)
        return 1.0 / 255.0, (0.0, 1.0)
    raise ValueError(f"numpy float images must lie in [0, 1] or [0, 255]; found values in [{lo}, {hi}].")


def _array_splits(arrays: ArraySet, name: str, request: Request) -> RawSplits:
    x = arrays.x
    is_image = x.ndim == 4
    if not is_image and (request.image_size is not None or request.color_mode is not None):
        raise ValueError(f"Source {name!r} holds vectors of shape {x.shape[1:]}; image_size and color_mode apply to images only.")
    indices = split_indices(len(x), arrays.labels, request.validation_fraction, request.test_fraction, request.seed)
    scale = np.float32(arrays.scale)
    size = tuple(request.image_size) if request.image_size is not None else None
    channels = _output_channels(x.shape[-1], request.color_mode, name) if is_image else None
    # Images kept as they are (no resize or colour change) and holding bytes are stored, and so cached,
    # as uint8 and scaled after the cache, giving the same float32 values; the rest become float32 here.
    as_is = is_image and size is None and channels == x.shape[-1]
    compact = as_is and (x.dtype == np.bool_ or (np.issubdtype(x.dtype, np.integer) and x.size > 0
                                                 and x.min() >= 0 and x.max() <= 255))
    if compact:
        x = x.astype(np.uint8)

    def restore(stored):
        return tf.cast(stored, tf.float32) * scale

    def normalise(example):
        out = dict(example)
        if not compact:
            out["x"] = tf.cast(example["x"], tf.float32) * scale
            if is_image:
                out["x"] = _convert_image(out["x"], channels, size)
        if "mask" in example:
            out["mask"] = tf.cast(example["mask"], tf.int32)
            if size is not None:
                out["mask"] = _resize_mask(out["mask"], size)
        return out

    datasets, counts = {}, {}
    for split, idx in zip(SPLITS, indices):
        tensors = {"x": x[idx]}
        if request.targets == "label":
            tensors["y"] = arrays.labels[idx]
        elif request.targets == "mask":
            tensors["mask"] = arrays.masks[idx]
        datasets[split] = tf.data.Dataset.from_tensor_slices(tensors).map(normalise, num_parallel_calls=_AUTOTUNE)
        counts[split] = int(len(idx))
    if is_image:
        input_shape = (size or x.shape[1:3]) + (channels,)
        input_shape = tuple(int(d) for d in input_shape)
    else:
        input_shape = tuple(int(d) for d in x.shape[1:])
    num_classes, class_names = _class_info(request, arrays.class_names, arrays.mask_class_names)
    return RawSplits(datasets, counts, name, input_shape, num_classes, class_names, tuple(arrays.value_range),
                     levels=arrays.levels if is_image else None,
                     restore=restore if compact else (lambda stored: stored))


# === Image folders ===


class _Links:
    """Symbolic links met while listing one data folder.

    A link is followed when its target lies inside the data folder (the folder given, resolved) and,
    for a folder, when that folder is not already being listed (a loop such as ``b/up -> ..``);
    any other link (to a file or folder outside, a loop, a dangling link) is skipped, and all those
    skipped are named in one warning (`warn`). Nothing outside the folder the user named is read.
    """

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.skipped: list[str] = []

    def keep(self, path: str, seen: set | None = None) -> bool:
        if not os.path.islink(path):
            return True
        target = os.path.realpath(path)
        parent = os.path.realpath(os.path.dirname(path))
        inside = target == self.root or target.startswith(self.root + os.sep)
        loop = (seen is not None and target in seen) or parent == target or parent.startswith(target + os.sep)
        if inside and os.path.exists(target) and not loop:
            return True
        self.skipped.append(path)
        return False

    def warn(self, folder) -> None:
        if self.skipped:
            logger.warning("skipped %d symbolic link(s) in %s that lead outside it, loop back into it or "
                           "dangle: %s", len(self.skipped), os.fspath(folder), sorted(set(self.skipped))[:10])
            self.skipped.clear()


def _list_images(folder: pathlib.Path, recursive: bool = True, links: _Links | None = None) -> list[str]:
    links = links or _Links(folder)
    found, seen = [], {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, followlinks=True):
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            path = os.path.join(root, d)
            if links.keep(path, seen):
                seen.add(os.path.realpath(path))
                kept.append(d)
        dirs[:] = kept
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
                  and links.keep(os.path.join(root, f))]
        if not recursive:
            break
    return found


def _subfolders(folder: pathlib.Path, links: _Links | None = None) -> list[str]:
    seen = {os.path.realpath(folder)}
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and (links is None or links.keep(os.fspath(d), seen)))


def _index_class_folder(folder: pathlib.Path, links: _Links | None = None):
    """Files and labels of a folder of class sub-folders, or of loose images (labels None)."""
    links = links or _Links(folder)
    subfolders = _subfolders(folder, links)
    listed = {c: _list_images(folder / c, links=links) for c in subfolders}
    classes = [c for c in subfolders if listed[c]]
    if not classes:
        files = _list_images(folder, recursive=False, links=links)
        links.warn(folder)
        return files, None, ()
    empty = [c for c in subfolders if c not in classes]
    if empty:
        # Kept out of the classes (and of the class ids), said once: an empty folder is most often a
        # class not collected yet, and refusing would block every other class.
        logger.warning("class folder(s) %s in %s hold no images (%s); training without those classes",
                       empty, os.fspath(folder), ", ".join(IMAGE_EXTENSIONS))
    files, labels = [], []
    for label, name in enumerate(classes):
        class_files = listed[name]
        files += class_files
        labels += [label] * len(class_files)
    links.warn(folder)
    return files, np.asarray(labels, np.int32), tuple(classes)


def _folder_splits(root: pathlib.Path, request: Request, options: dict) -> RawSplits:
    name = os.fspath(root)
    subfolders = _subfolders(root)
    if "images" in subfolders and "masks" in subfolders:
        return _segmentation_folder_splits(root, request, options)
    unknown = sorted(options)
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for image folder {name!r}; folders of class sub-folders take none.")
    vf, tf_, seed = request.validation_fraction, request.test_fraction, request.seed
    if "train" in subfolders:
        # Pre-split layout: train/ and test/ (and optionally validation/ or val/) each of class sub-folders.
        files_by_split, labels_by_split = {}, {}
        links = _Links(root)  # links between train/ and test/ stay inside the data folder
        train_files, train_labels, class_names = _index_class_folder(root / "train", links)
        given = {"validation": next((root / d for d in ("validation", "val") if d in subfolders), None),
                 "test": root / "test" if "test" in subfolders else None}
        carve_val, carve_test = given["validation"] is None, given["test"] is None
        tr, va, te = split_indices(len(train_files), train_labels, vf if carve_val else 0.0,
                                   tf_ if carve_test else 0.0, seed)
        for split, idx in (("train", tr), ("validation", va), ("test", te)):
            files_by_split[split] = [train_files[i] for i in idx]
            labels_by_split[split] = None if train_labels is None else train_labels[idx]
        for split, folder in given.items():
            if folder is None:
                continue
            files, labels, names = _index_class_folder(folder, links)
            files_by_split[split] = files
            labels_by_split[split] = _relabel(labels, names, class_names, folder)
    else:
        files, labels, class_names = _index_class_folder(root)
        files_by_split, labels_by_split = {}, {}
        for split, idx in zip(SPLITS, split_indices(len(files), labels, vf, tf_, seed)):
            files_by_split[split] = [files[i] for i in idx]
            labels_by_split[split] = None if labels is None else labels[idx]
    if not files_by_split["train"]:
        raise ValueError(f"No training images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {name!r}.")
    available = ("image", "none") + (("label",) if class_names else ())
    _check_targets(request.targets, available, name)

    decode, input_shape = _image_decoder(files_by_split, request, name)
    datasets, counts = {}, {}
    for split in SPLITS:
        paths = tf.data.Dataset.from_tensor_slices(tf.constant(files_by_split[split], tf.string))
        images = paths.map(decode, num_parallel_calls=_AUTOTUNE)
        if request.targets == "label":
            labels = tf.data.Dataset.from_tensor_slices(labels_by_split[split].astype(np.int32))
            ds = tf.data.Dataset.zip(images, labels).map(lambda x, y: {"x": x, "y": y})
        else:
            ds = images.map(lambda x: {"x": x})
        datasets[split] = ds
        counts[split] = len(files_by_split[split])
    num_classes, names = _class_info(request, class_names)
    return RawSplits(datasets, counts, name, input_shape, num_classes, names, levels=256,  # 8-bit files
                     restore=_from_bytes)


def _relabel(labels, names, class_names, folder):
    if labels is None:
        if class_names:
            raise ValueError(f"Folder {os.fspath(folder)!r} has no class sub-folders but train/ has {class_names}.")
        return None
    extra = sorted(set(names) - set(class_names))
    if extra:
        raise ValueError(f"Folder {os.fspath(folder)!r} has classes {extra} that train/ lacks (train/ has {class_names}).")
    lookup = np.asarray([class_names.index(n) for n in names], np.int32)
    return lookup[labels]


def _image_decoder(files_by_split: dict, request: Request, name: str):
    """A tf function path -> uint8 image of one fixed shape, and that shape.

    Without `image_size` the first training image fixes size and colour mode; images of another size are
    resized to it (with a warning) rather than left mis-shaped.
    """
    first = files_by_split["train"][0]
    (width, height), mode = image_header(first)
    source_channels = 1 if mode in _GRAYSCALE_MODES else 3
    channels = _output_channels(source_channels, request.color_mode, name)
    # Every file's header against the pixel limit and its structure, naming a bad file, before
    # TensorFlow decodes any of them.
    all_files = [f for split in SPLITS for f in files_by_split[split]]
    sizes = scan_images(all_files)
    if request.image_size is not None:
        size, resize = tuple(int(d) for d in request.image_size), True
    else:
        size = (height, width)
        mismatched = sum(s != (width, height) for s in sizes)
        resize = mismatched > 0
        if resize:
            logger.warning("%d of %d images in %s differ from the first image's size %dx%d; resizing them to it.",
                           mismatched, len(all_files), name, height, width)

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        if resize:
            image = _to_bytes(tf.image.resize(image, size, method="bilinear"))
        return tf.ensure_shape(image, size + (channels,))

    return decode, size + (channels,)


def _segmentation_folder_splits(root: pathlib.Path, request: Request, options: dict) -> RawSplits:
    name = os.fspath(root)
    unknown = sorted(set(options) - {"num_classes"})
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for segmentation folder {name!r}; accepted: num_classes.")
    _check_targets(request.targets, ("mask", "image", "none"), name)
    images = _list_images(root / "images", recursive=False)
    masks_by_stem = {pathlib.Path(p).stem: p for p in _list_images(root / "masks", recursive=False)}
    missing = [p for p in images if pathlib.Path(p).stem not in masks_by_stem]
    if missing:
        raise ValueError(f"{len(missing)} image(s) in {name}/images have no mask of the same stem in masks/, "
                         f"e.g. {os.path.basename(missing[0])!r}.")
    if not images:
        raise ValueError(f"No images found in {name}/images.")
    indices = split_indices(len(images), None, request.validation_fraction, request.test_fraction, request.seed)
    files_by_split = {s: [images[i] for i in idx] for s, idx in zip(SPLITS, indices)}
    decode, input_shape = _image_decoder(files_by_split, request, name)

    datasets, counts, mask_arrays = {}, {}, {}
    if request.targets == "mask":
        for split in SPLITS:
            stems = [pathlib.Path(p).stem for p in files_by_split[split]]
            mask_arrays[split] = _read_masks([masks_by_stem[s] for s in stems], input_shape[:2])
        num_classes = _mask_classes(mask_arrays, options, name)
    for split in SPLITS:
        paths = tf.data.Dataset.from_tensor_slices(tf.constant(files_by_split[split], tf.string))
        if request.targets == "mask":
            masks = tf.data.Dataset.from_tensor_slices(mask_arrays[split])
            ds = tf.data.Dataset.zip(paths, masks).map(
                lambda p, m: {"x": decode(p), "mask": tf.cast(m, tf.int32)}, num_parallel_calls=_AUTOTUNE)
        else:
            ds = paths.map(lambda p: {"x": decode(p)}, num_parallel_calls=_AUTOTUNE)
        datasets[split] = ds
        counts[split] = len(files_by_split[split])
    if request.targets == "mask":
        return RawSplits(datasets, counts, name, input_shape, num_classes,
                         tuple(str(i) for i in range(num_classes)), levels=256, restore=_from_bytes)
    return RawSplits(datasets, counts, name, input_shape, None, (), levels=256, restore=_from_bytes)


def _read_masks(paths: list, size: tuple) -> np.ndarray:
    """Masks as class-id arrays (N, H, W) at `size`, read with PIL so palette PNGs keep their indices."""
    from PIL import Image

    height, width = size
    out = np.zeros((len(paths), height, width), np.int32)
    for i, path in enumerate(paths):
        image_header(path)  # pixel limit, readable, before decoding
        with Image.open(path) as im:
            if im.size != (width, height):
                im = im.resize((width, height), Image.NEAREST)
            mask = np.asarray(im)
        if mask.ndim == 3:
            if not np.all(mask == mask[..., :1]):
                raise ValueError(f"Mask {path!r} has differing colour channels; masks must be single-channel class ids.")
            mask = mask[..., 0]
        out[i] = mask
    return out


def _mask_classes(mask_arrays: dict, options: dict, name: str) -> int:
    train_max = int(mask_arrays["train"].max()) if mask_arrays["train"].size else 0
    if "num_classes" in options:
        num_classes = int(options["num_classes"])
        highest = max(int(m.max()) for m in mask_arrays.values() if m.size)
        if highest >= num_classes:
            raise ValueError(f"Masks in {name!r} hold class id {highest} but num_classes={num_classes}.")
        return num_classes
    num_classes = train_max + 1
    for split in ("validation", "test"):
        if mask_arrays[split].size and int(mask_arrays[split].max()) >= num_classes:
            logger.warning("%s masks in %s hold class ids above the training masks' %d; pass "
                           "options={'num_classes': k} to fix the class count.", split, name, train_max)
    return num_classes


# === TFDS ===


def _prepare_tfds(builder, name: str) -> None:
    """Download and prepare a TFDS data set unless its data directory already holds it.

    Offline (or behind a firewall) the download fails deep inside TFDS with a network error; it
    becomes one line that says where TFDS looked and how to provide the data.
    """
    if builder.is_prepared():
        return
    try:
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001  (requests, urllib, OS and TFDS errors all mean: not available)
        reason = (str(err).splitlines() or [""])[0][:200]
        raise ValueError(
            f"TFDS data set {name!r} is not prepared in {builder.data_dir} and could not be downloaded "
            f"({type(err).__name__}: {reason}). Prepare it once where the network reaches TFDS's servers "
            f"(`tfds build {builder.name} --data_dir DIR`, or this same command there), then pass "
            "data_dir=DIR (CLI: --data-dir DIR) or set TFDS_DATA_DIR.") from None


def _tfds_splits(name: str, source: str, request: Request, options: dict) -> RawSplits:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=request.data_dir)
    except ValueError as err:  # DatasetNotFoundError, or a string TFDS cannot even parse as a name
        raise _unknown_source(name, source) from err
    base = builder.name
    if options:
        raise ValueError(f"TFDS source {name!r} takes no options; got {sorted(options)}.")
    features = builder.info.features
    image_key = "image" if "image" in features else next(
        (k for k, f in features.items() if isinstance(f, tfds.features.Image)), None)
    if image_key is None:
        raise ValueError(f"TFDS data set {name!r} has no image feature; keras_zoo reads image data sets only.")
    label_key = "label" if "label" in features and isinstance(features["label"], tfds.features.ClassLabel) else None
    available = ("image", "none") + (("label",) if label_key else ()) + (("mask",) if base in TFDS_MASKS else ())
    _check_targets(request.targets, available, name)

    image_shape = tuple(features[image_key].shape)
    size = request.image_size or TFDS_DEFAULT_SIZE.get(base)
    if size is None and None in image_shape[:2]:
        raise ValueError(f"Images of TFDS data set {name!r} vary in size; pass image_size=(height, width).")
    size = tuple(int(d) for d in size) if size is not None else None
    channels = _output_channels(image_shape[-1], request.color_mode, name)
    input_shape = (size or image_shape[:2]) + (channels,)

    # What tfds.load does, in two steps, so the split names can be chosen from the prepared info.
    _prepare_tfds(builder, name)
    info = builder.info
    split_names = _tfds_split_names(info, request)
    # A carved slice of zero width (validation_fraction=0) is an empty pipeline, not a TFDS slice.
    wanted = [s for s in SPLITS if split_names[s] is not None]
    loaded = dict(zip(wanted, builder.as_dataset(split=[split_names[s] for s in wanted], shuffle_files=False)))
    mask_key, offset, mask_names = TFDS_MASKS.get(base, (None, 0, ()))

    def decode(example):
        x = example[image_key]
        if x.dtype != tf.uint8:
            raise ValueError(f"TFDS data set {name!r} stores {x.dtype.name} images; keras_zoo reads uint8 ones.")
        if size is not None or channels != image_shape[-1]:
            x = _to_bytes(_convert_image(tf.cast(x, tf.float32), channels, size))
        out = {"x": tf.ensure_shape(x, input_shape)}
        if request.targets == "label":
            out["y"] = tf.cast(example[label_key], tf.int32)
        elif request.targets == "mask":
            mask = tf.cast(example[mask_key][..., 0], tf.int32) + offset
            mask = tf.clip_by_value(mask, 0, len(mask_names) - 1)
            if size is not None:
                mask = _resize_mask(mask, size)
            out["mask"] = tf.ensure_shape(mask, input_shape[:2])
        return out

    datasets, counts = {}, {}
    for split in SPLITS:
        if split in loaded:
            datasets[split] = loaded[split].map(decode, num_parallel_calls=_AUTOTUNE)
            counts[split] = _tfds_count(info, split_names[split], loaded[split])
        else:
            datasets[split] = datasets["train"].take(0)
            counts[split] = 0
    class_names = tuple(features[label_key].names) if label_key else ()
    num_classes, class_names = _class_info(request, class_names, mask_names)
    return RawSplits(datasets, counts, name, tuple(int(d) for d in input_shape), num_classes, class_names,
                     levels=256, restore=_from_bytes)  # uint8 image features


def _percent(fraction: float) -> str:
    return f"{round(100.0 * fraction, 6):g}%"


def _tfds_split_names(info, request: Request) -> dict:
    """TFDS split strings: the data set's own train/test (and validation), carving what is missing from train."""
    known = set(info.splits.keys())  # empty only for unprepared data (tfds mock data)
    has_test = "test" in known or not known
    has_val = "validation" in known
    vf = request.validation_fraction
    tf_ = 0.0 if has_test else request.test_fraction
    train_end = 1.0 - (0.0 if has_val else vf) - tf_
    names = {"train": f"train[:{_percent(train_end)}]" if train_end < 1.0 else "train"}
    names["validation"] = "validation" if has_val else (
        f"train[{_percent(train_end)}:{_percent(train_end + vf)}]" if vf > 0 else None)
    names["test"] = "test" if has_test else (f"train[{_percent(1.0 - tf_)}:]" if tf_ > 0 else None)
    return names


def _tfds_count(info, split: str, ds) -> int:
    try:
        return int(info.splits[split].num_examples)
    except (KeyError, ValueError):
        # Split sizes are unknown only when the data set was never prepared (e.g. under tfds mock data).
        cardinality = int(ds.cardinality())
        if cardinality >= 0:
            return cardinality
        return int(ds.reduce(0, lambda n, _: n + 1))
