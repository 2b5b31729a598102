"""Built-in offline data sets: generated or shipped with a dependency, so they need no download.

Each generator is plain numpy (no TensorFlow), deterministic in its `seed`, and returns an
`ArraySet`; `keras_zoo.data.sources` splits it and turns it into tf.data pipelines.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_zoo.data.builtin.points import make_moons, make_spirals
from keras_zoo.data.builtin.series import WAVE_NAMES, make_series
from keras_zoo.data.builtin.shapes import SHAPE_NAMES, make_shapes

BUILTIN_SOURCES = {
    "digits": "scikit-learn's 8x8 handwritten digits: 1797 grayscale images, 10 classes",
    "shapes": "procedural RGB images of one shape each (circle, square, triangle, cross, ellipse) "
    "with class labels and per-pixel masks; options size, count, classes, channels, noise",
    "moons": "two interleaving half circles in 2-D, binary labels; options count, noise",
    "spirals": "two interleaved spiral arms in 2-D, binary labels; options count, noise, turns",
    "series": "procedural time series (length x 1): noisy sine, triangle, square and sawtooth waves of "
    "random period, phase and amplitude, labelled by kind; options count, length, noise",
}

# Accepted options and their defaults; the types of the defaults are the accepted types.
BUILTIN_OPTIONS = {
    "digits": {},
    "shapes": {"size": 32, "count": 3000, "classes": 3, "channels": 3, "noise": 0.05},
    "moons": {"count": 1000, "noise": 0.1},
    "spirals": {"count": 1000, "noise": 0.1, "turns": 1.5},
    "series": {"count": 2000, "length": 32, "noise": 0.05},
}


@dataclasses.dataclass
class ArraySet:
    """Examples held in memory, before splitting.

    `x` keeps its stored dtype; `scale` maps it to float32 inputs (x * scale). `masks` holds per-pixel
    class ids (0 = background) for segmentation sets.
    """

    x: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple = ()
    masks: np.ndarray | None = None
    mask_class_names: tuple = ()
    scale: float = 1.0
    value_range: tuple = (0.0, 1.0)
    levels: int | None = None  # equally spaced values the images take in [0, 1] (None: continuous)


def resolve_options(name: str, options: dict) -> dict:
    """Merge `options` over the defaults of builtin `name`; unknown keys or wrong types raise ValueError."""
    defaults = BUILTIN_OPTIONS[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        raise ValueError(f"Unknown option(s) {unknown} for builtin source {name!r}; accepted options: {accepted}.")
    merged = dict(defaults)
    for key, value in options.items():
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool):
            raise ValueError(
                f"Option {key}={value!r} of builtin source {name!r} must be of type {want.__name__}."
            )
        merged[key] = value
    return merged


def load_builtin(name: str, options: dict, seed: int) -> ArraySet:
    """Generate (or load) builtin set `name` with `options` merged over its defaults."""
    opts = resolve_options(name, options)
    if name == "digits":
        return _digits()
    if name == "shapes":
        x, labels, masks = make_shapes(seed=seed, **opts)
        names = SHAPE_NAMES[: opts["classes"]]
        return ArraySet(x=x, labels=labels, class_names=names, masks=masks,
                        mask_class_names=("background",) + names)
    if name in ("moons", "spirals"):
        make = make_moons if name == "moons" else make_spirals
        x, labels = make(seed=seed, **opts)
        # Standardised points are not in [0, 1]; the info records their actual range.
        return ArraySet(x=x, labels=labels, class_names=("0", "1"),
                        value_range=(float(x.min()), float(x.max())))
    if name == "series":
        x, labels = make_series(seed=seed, **opts)
        return ArraySet(x=x, labels=labels, class_names=WAVE_NAMES,
                        value_range=(float(x.min()), float(x.max())))
    raise KeyError(name)


def _digits() -> ArraySet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The data ship with scikit-learn and have no seed; values are 0..16.
    x = digits.images.astype(np.float32)[..., None]
    return ArraySet(x=x, labels=digits.target.astype(np.int32),
                    class_names=tuple(str(i) for i in range(10)), scale=1.0 / 16.0, levels=17)
