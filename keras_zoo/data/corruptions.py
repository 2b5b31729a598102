"""Input corruptions for denoising and masked autoencoders, built from short spec strings.

A spec is one or more corruptions joined by ``+``, each ``kind:amount[,key=value...]``:

- ``gaussian:0.3``: add N(0, 0.3²) noise to every value, then clip to [0, 1].
- ``salt_pepper:0.1``: set 10% of the pixels (all channels of a pixel together) to 0 or 1.
- ``mask_patches:0.5,size=2[,fill=0.0][,loss=masked]``: hide exactly half of the 2x2 patches of the
  grid (the last patch row/column may be cut by the border) by setting them to `fill`. With
  ``loss=masked`` the pipeline also yields a per-pixel sample weight that is 1 on hidden pixels and 0
  elsewhere, so the loss covers only the pixels the model had to impute (the metrics, MSE, PSNR and
  SSIM, stay whole-image figures).

`make_corruption(spec, seed)` returns the callable `load_splits(corruption=...)` applies to each
clean image: ``(x, seed_tensor) -> (x_corrupted, x)`` or ``(x_corrupted, x, weight)``. All noise is
drawn with stateless random ops from the seed tensor, so the same seed corrupts the same way.
"""

from __future__ import annotations

import dataclasses

KINDS = ("gaussian", "salt_pepper", "mask_patches")
_OPTIONS = {
    "gaussian": {},
    "salt_pepper": {},
    "mask_patches": {"size": int, "fill": float, "loss": str},
}
_DEFAULTS = {"mask_patches": {"size": 4, "fill": 0.0, "loss": "all"}}


@dataclasses.dataclass(frozen=True)
class Corruption:
    """One parsed corruption: its kind, amount (sigma or rate) and options."""

    kind: str
    amount: float
    options: tuple = ()

    def option(self, key):
        return dict(self.options).get(key, _DEFAULTS.get(self.kind, {}).get(key))


def _parse_one(text: str, spec: str) -> Corruption:
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r} in {spec!r}; accepted kinds: {list(KINDS)} "
                         "(for example 'gaussian:0.3', 'salt_pepper:0.1', 'mask_patches:0.5,size=2')")
    parts = [p.strip() for p in rest.split(",")] if sep else []
    if not parts or not parts[0] or "=" in parts[0]:
        raise ValueError(f"corruption {kind!r} in {spec!r} needs an amount first, e.g. '{kind}:0.2'")
    try:
        amount = float(parts[0])
    except ValueError:
        raise ValueError(f"amount {parts[0]!r} of corruption {kind!r} in {spec!r} is not a number") from None
    if kind == "gaussian" and not amount > 0:
        raise ValueError(f"gaussian noise sigma must be > 0, got {amount} in {spec!r}")
    if kind != "gaussian" and not 0.0 < amount < 1.0:
        raise ValueError(f"{kind} rate must be in (0, 1), got {amount} in {spec!r}")
    options = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _OPTIONS[kind]:
            raise ValueError(f"unknown option {part!r} for corruption {kind!r} in {spec!r}; "
                             f"accepted: {sorted(_OPTIONS[kind]) or 'none'}")
        try:
            options[key] = _OPTIONS[kind][key](value.strip())
        except ValueError:
            raise ValueError(f"option {key}={value!r} of {kind!r} in {spec!r} is not a "
                             f"{_OPTIONS[kind][key].__name__}") from None
    if kind == "mask_patches":
        if options.get("size", 4) < 1:
            raise ValueError(f"mask_patches size must be >= 1, got {options['size']} in {spec!r}")
        if options.get("loss", "all") not in ("all", "masked"):
            raise ValueError(f"mask_patches loss must be 'all' or 'masked', got {options['loss']!r} in {spec!r}")
    return Corruption(kind, amount, tuple(sorted(options.items())))


def parse_corruption(spec: str) -> tuple:
    """Parse a spec string into a tuple of `Corruption`; bad specs raise `ValueError` naming the part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"corruption must be a non-empty spec string such as 'gaussian:0.3', got {spec!r}")
    steps = tuple(_parse_one(part, spec) for part in spec.split("+"))
    if sum(s.kind == "mask_patches" and s.option("loss") == "masked" for s in steps) > 1:
        raise ValueError(f"at most one 'mask_patches' with loss=masked per spec, got {spec!r}")
    return steps


def _gaussian(tf, x, sigma, seed):
    noise = tf.random.stateless_normal(tf.shape(x), seed=seed, stddev=sigma, dtype=x.dtype)
    return tf.clip_by_value(x + noise, 0.0, 1.0), None


def _salt_pepper(tf, x, rate, seed):
    # One draw per pixel (shared by its channels): a hit is salt or pepper with equal odds.
    shape = tf.concat([tf.shape(x)[:-1], [1]], axis=0)
    u = tf.random.stateless_uniform(shape, seed=seed, dtype=x.dtype)
    salt = tf.cast(u < rate / 2, x.dtype)
    pepper = tf.cast((u >= rate / 2) & (u < rate), x.dtype)
    return x * (1.0 - salt - pepper) + salt, None


def _mask_patches(tf, x, ratio, size, fill, seed):
    """Hide round(ratio x number of patches) patches of each image (at least one)."""
    shape = tf.shape(x)
    h, w = shape[-3], shape[-2]
    gh, gw = (h + size - 1) // size, (w + size - 1) // size
    lead = shape[:-3]
    n = gh * gw
    scores = tf.random.stateless_uniform(tf.concat([lead, [n]], 0), seed=seed)
    k = tf.maximum(1, tf.cast(tf.round(ratio * tf.cast(n, tf.float32)), tf.int32))
    # The k lowest scores of each image are hidden: exactly k patches, chosen uniformly.
    kth = tf.gather(tf.sort(scores, axis=-1), k - 1, axis=-1)[..., None]
    hidden = tf.cast(scores <= kth, x.dtype)
    grid = tf.reshape(hidden, tf.concat([lead, [gh, gw, 1]], 0))
    mask = tf.repeat(tf.repeat(grid, size, axis=-3), size, axis=-2)[..., :h, :w, :]
    return x * (1.0 - mask) + fill * mask, mask


def make_corruption(spec: str | None):
    """The callable `load_splits(corruption=...)` applies, or None for ``spec=None``.

    Args:
        spec: a corruption spec (see the module docstring), e.g. ``"gaussian:0.2+salt_pepper:0.05"``.

    Returns:
        ``fn(x, seed_tensor) -> (x_corrupted, x)``, or ``(x_corrupted, x, weight)`` when a
        ``mask_patches`` step asks for ``loss=masked``. `x` is one image ``(H, W, C)`` or a batch
        ``(..., H, W, C)``, float in [0, 1]; `seed_tensor` is a stateless seed of shape ``(2,)``.

    Example:
        >>> noisy, clean = make_corruption("gaussian:0.3")(images, tf.constant([0, 1]))
    """
    if spec is None:
        return None
    steps = parse_corruption(spec)

    def corrupt(x, seed_tensor):
        import tensorflow as tf

        clean = x
        seeds = tf.random.experimental.stateless_split(tf.cast(seed_tensor, tf.int64), num=len(steps))
        weight = None
        for i, step in enumerate(steps):
            if step.kind == "gaussian":
                x, _ = _gaussian(tf, x, step.amount, seeds[i])
            elif step.kind == "salt_pepper":
                x, _ = _salt_pepper(tf, x, step.amount, seeds[i])
            else:
                x, mask = _mask_patches(tf, x, step.amount, step.option("size"), step.option("fill"), seeds[i])
                if step.option("loss") == "masked":
                    weight = mask
        if weight is not None:
            return x, clean, weight
        return x, clean

    corrupt.spec = spec
    return corrupt


# =========================================================================== common corruptions
# Hendrycks & Dietterich (ICLR 2019), "Benchmarking neural network robustness to common corruptions
# and perturbations": 15 corruptions in four families, each at severities 1-5. The severity
# constants are those of their CIFAR-10-C script (32x32 images); spatial ones (blur radii, shifts,
# zooms are relative already) are scaled by min(H, W) / 32 so that an image of another size is
# corrupted alike. Everything runs as TensorFlow ops on a batch (N, H, W, C) or one image (H, W, C),
# float in [0, 1] or uint8 (returned in the dtype given), 1 or 3 channels, drawn with stateless
# random ops from the seed: the same seed gives the same corrupted images.
#
# Stand-ins (the original needs assets or libraries that do not ship here): frost blends procedural
# ice (sharpened multi-octave noise) where the original blends photos of frost; motion blur (and the
# snow layer's streaks) average shifted copies along a random direction with Gaussian weights where
# the original calls ImageMagick; glass blur moves each pixel by a random offset within the radius
# where the original swaps neighbours in a Python loop; fog's plasma fractal is summed octaves of
# upsampled noise (the same 1/f picture) rather than the diamond-square recursion.

CORRUPTION_FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
COMMON_CORRUPTIONS = tuple(name for names in CORRUPTION_FAMILIES.values() for name in names)
SEVERITIES = (1, 2, 3, 4, 5)

_SEVERITY = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),  # zooms 1, 1.01, ... up to (not including) this
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                          (0.1, 0.03, 0.03)),  # (alpha, sigma, affine) as fractions of the image size
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
}


def check_corruptions(corruptions, severities=SEVERITIES) -> tuple:
    """(names, severities) validated: ``"all"``, a family name or a list of names; severities 1-5."""
    if isinstance(corruptions, str):
        if corruptions == "all":
            names = COMMON_CORRUPTIONS
        elif corruptions in CORRUPTION_FAMILIES:
            names = CORRUPTION_FAMILIES[corruptions]
        else:
            names = tuple(part.strip() for part in corruptions.split(","))
    else:
        names = tuple(corruptions)
    unknown = [n for n in names if n not in COMMON_CORRUPTIONS]
    if not names or unknown:
        raise ValueError(f"unknown corruption(s) {unknown or names!r}; accepted: 'all', a family "
                         f"{sorted(CORRUPTION_FAMILIES)} or names from {list(COMMON_CORRUPTIONS)}")
    if isinstance(severities, int):
        severities = (severities,)
    severities = tuple(severities)
    bad = [s for s in severities if isinstance(s, bool) or not isinstance(s, int) or s not in SEVERITIES]
    if not severities or bad:
        raise ValueError(f"severities must be integers from 1 to 5, got {bad or severities!r}")
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(severities))


def _seed(tf, seed):
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    return seed


def _depthwise(tf, x, kernel):
    """x (N, H, W, C) convolved per channel with one 2-D kernel, reflecting at the borders."""
    kh, kw = kernel.shape[0], kernel.shape[1]
    ph, pw = kh // 2, kw // 2
    h, w = x.shape[1], x.shape[2]
    mode = "REFLECT" if (h is None or h > ph) and (w is None or w > pw) else "SYMMETRIC"
    padded = tf.pad(x, [[0, 0], [ph, kh - 1 - ph], [pw, kw - 1 - pw], [0, 0]], mode=mode)
    channels = tf.shape(x)[-1]
    k = tf.tile(tf.cast(kernel, x.dtype)[:, :, None, None], tf.stack([1, 1, channels, 1]))
    return tf.nn.depthwise_conv2d(padded, k, [1, 1, 1, 1], "VALID")


def _gaussian_kernel(sigma: float):
    import numpy as np

    radius = max(1, int(np.ceil(3 * sigma)))
    r = np.arange(-radius, radius + 1, dtype="float64")
    g = np.exp(-r ** 2 / (2 * max(sigma, 1e-6) ** 2))
    g /= g.sum()
    return np.outer(g, g).astype("float32")


def _gaussian_blur(tf, x, sigma: float):
    return x if sigma <= 0 else _depthwise(tf, x, _gaussian_kernel(sigma))


def _warp(tf, x, dy, dx):
    """Bilinear resampling: out[n, i, j] = x[n, i + dy[n, i, j], j + dx[n, i, j]] (borders clamped)."""
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    rows = tf.cast(tf.range(h), x.dtype)[None, :, None] + dy
    cols = tf.cast(tf.range(w), x.dtype)[None, None, :] + dx
    full = tf.stack([n, h, w])
    rows = tf.clip_by_value(tf.broadcast_to(rows, full), 0.0, tf.cast(h - 1, x.dtype))
    cols = tf.clip_by_value(tf.broadcast_to(cols, full), 0.0, tf.cast(w - 1, x.dtype))
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0, c0 = tf.cast(r0, tf.int32), tf.cast(c0, tf.int32)
    r1, c1 = tf.minimum(r0 + 1, h - 1), tf.minimum(c0 + 1, w - 1)
    batch = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(r0))

    def at(r, c):
        return tf.gather_nd(x, tf.stack([batch, r, c], axis=-1))

    top = at(r0, c0) * (1 - fc) + at(r0, c1) * fc
    bottom = at(r1, c0) * (1 - fc) + at(r1, c1) * fc
    return top * (1 - fr) + bottom * fr


def _grey(tf, x):
    return tf.image.rgb_to_grayscale(x) if x.shape[-1] == 3 else x


def _fractal(tf, shape, seed, decay: float, octaves: int = 6):
    """Summed octaves of bilinearly upsampled uniform noise, octave k weighted decay^k, in [0, 1]."""
    n, h, w = shape
    seeds = tf.random.experimental.stateless_split(seed, octaves)
    total = tf.zeros((n, h, w, 1))
    weight_sum = 0.0
    for k in range(octaves):
        cells = 2 ** (k + 1)
        noise = tf.random.stateless_uniform((n, cells, cells, 1), seeds[k])
        total += (decay ** k) * tf.image.resize(noise, (h, w), method="bilinear")
        weight_sum += decay ** k
    total /= weight_sum
    low = tf.reduce_min(total, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(total, axis=[1, 2, 3], keepdims=True)
    return (total - low) / tf.maximum(high - low, 1e-6)


def _motion(tf, x, radius: float, sigma: float, seed):
    """Average of copies shifted 0..radius pixels along one random direction per image, Gaussian weights."""
    import numpy as np

    n = tf.shape(x)[0]
    angle = tf.random.stateless_uniform((n, 1, 1), seed, -np.pi, np.pi)
    steps = max(1, int(np.ceil(radius)))
    weights = np.exp(-np.arange(steps + 1) ** 2 / (2 * max(sigma, 1e-6) ** 2))
    weights /= weights.sum()
    out = 0.0
    for k, weight in enumerate(weights):
        shift = float(k) * radius / steps
        out += float(weight) * _warp(tf, x, -shift * tf.sin(angle), -shift * tf.cos(angle))
    return out


def _common(tf, name, x, severity, seed, scale):
    """One corruption of `x` (N, H, W, C) float32 in [0, 1]; `scale` is min(H, W) / 32."""
    import numpy as np

    c = _SEVERITY[name][severity - 1]
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    s1, s2, s3 = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    if name == "gaussian_noise":
        return x + tf.random.stateless_normal(shape, s1, stddev=c)
    if name == "shot_noise":
        return tf.random.stateless_poisson(shape, s1, lam=x * c, dtype=tf.float32) / c
    if name == "impulse_noise":
        u = tf.random.stateless_uniform(shape, s1)
        return tf.where(u < c / 2, 0.0, tf.where(u < c, 1.0, x))
    if name == "defocus_blur":
        radius, alias = c[0] * scale, c[1] * scale
        reach = max(1, int(np.ceil(radius)))
        r = np.arange(-reach, reach + 1)
        disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2).astype("float32")
        disk /= disk.sum()
        return _gaussian_blur(tf, _depthwise(tf, x, disk), alias)
    if name == "glass_blur":
        sigma, delta, iterations = c[0] * scale, max(1.0, c[1] * scale), c[2]
        x = _gaussian_blur(tf, x, sigma)
        for i, s in enumerate(tf.unstack(tf.random.experimental.stateless_split(s1, iterations))):
            offsets = tf.round(tf.random.stateless_uniform((n, h, w, 2), s, -delta, delta))
            x = _warp(tf, x, offsets[..., 0], offsets[..., 1])
        return _gaussian_blur(tf, x, sigma)
    if name == "motion_blur":
        return _motion(tf, x, c[0] * scale, c[1] * scale, s1)
    if name == "zoom_blur":
        zooms = np.arange(1.0, c, 0.01)[1:]
        out = x
        for z in zooms:
            half = 0.5 / z
            boxes = tf.tile(tf.constant([[0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half]], tf.float32), [n, 1])
            out += tf.image.crop_and_resize(x, boxes, tf.range(n), tf.stack([h, w]))
        return out / (len(zooms) + 1)
    if name == "snow":
        loc, spread, zoom, threshold, radius, sigma, blend = c
        flakes = tf.random.stateless_normal((n, h, w, 1), s1, mean=loc, stddev=spread)
        size = tf.cast(tf.math.ceil(tf.cast(tf.stack([h, w]), tf.float32) / zoom), tf.int32)
        flakes = tf.image.resize(tf.image.resize_with_crop_or_pad(flakes, size[0], size[1]), (h, w))
        flakes = tf.where(flakes < threshold, 0.0, flakes)
        flakes = tf.clip_by_value(_motion(tf, flakes, radius * scale, sigma * scale, s2), 0.0, 1.0)
        x = blend * x + (1 - blend) * tf.maximum(x, _grey(tf, x) * 1.5 + 0.5)
        return x + flakes + tf.image.rot90(flakes, 2)
    if name == "frost":
        texture = _fractal(tf, (n, h, w), s1, decay=0.9)
        ice = tf.clip_by_value((texture - 0.45) * 3.0, 0.0, 1.0)  # sharpened: bright crystals, dark gaps
        return c[0] * x + c[1] * ice
    if name == "fog":
        fog = _fractal(tf, (n, h, w), s1, decay=1.0 / c[1])
        peak = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
        return (x + c[0] * fog) * peak / (peak + c[0])
    if name == "brightness":
        if x.shape[-1] == 3:
            hsv = tf.image.rgb_to_hsv(x)
            value = tf.clip_by_value(hsv[..., 2:] + c, 0.0, 1.0)
            return tf.image.hsv_to_rgb(tf.concat([hsv[..., :2], value], axis=-1))
        return x + c
    if name == "contrast":
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        return (x - mean) * c + mean
    if name == "elastic_transform":
        size = float(min(x.shape[1] or 32, x.shape[2] or 32))
        alpha, sigma, affine = c[0] * size, c[1] * size, c[2] * size
        # A random affine map (each corner moved up to `affine` pixels), then a smooth random field.
        corners = tf.random.stateless_uniform((n, 2, 3), s1, -1.0, 1.0)
        hh, ww = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        rows = tf.range(hh)[None, :, None] / tf.maximum(hh - 1, 1.0) - 0.5
        cols = tf.range(ww)[None, None, :] / tf.maximum(ww - 1, 1.0) - 0.5
        dy = affine * (corners[:, 0, 0, None, None] + corners[:, 0, 1, None, None] * rows
                       + corners[:, 0, 2, None, None] * cols)
        dx = affine * (corners[:, 1, 0, None, None] + corners[:, 1, 1, None, None] * rows
                       + corners[:, 1, 2, None, None] * cols)
        if alpha > 0:
            field = tf.random.stateless_uniform((n, h, w, 2), s2, -1.0, 1.0)
            field = _gaussian_blur(tf, field, sigma) if sigma > 0 else field
            dy += alpha * field[..., 0]
            dx += alpha * field[..., 1]
        return _warp(tf, x, dy, dx)
    if name == "pixelate":
        small = tf.cast(tf.math.maximum(1.0, tf.round(tf.cast(tf.stack([h, w]), tf.float32) * c)), tf.int32)
        return tf.image.resize(tf.image.resize(x, small, method="area"), tf.stack([h, w]), method="nearest")
    if name == "jpeg_compression":
        pixels = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
        out = tf.map_fn(lambda im: tf.image.adjust_jpeg_quality(im, c), pixels,
                        fn_output_signature=tf.TensorSpec(x.shape[1:], tf.uint8))
        return tf.cast(out, tf.float32) / 255.0
    raise ValueError(f"unknown corruption {name!r}; accepted: {list(COMMON_CORRUPTIONS)}")


def corrupt(images, name: str, severity: int = 3, seed=0):
    """`images` with one of the 15 common corruptions at `severity` (1-5).

    Args:
        images: a batch ``(N, H, W, C)`` or one image ``(H, W, C)``, uint8 (0-255) or float in
            [0, 1]; 1 or 3 channels; any size.
        name: one of `COMMON_CORRUPTIONS` (``"gaussian_noise"``, ``"motion_blur"``, ``"fog"``...).
        severity: 1 (mild) to 5 (severe), Hendrycks & Dietterich's CIFAR-10-C levels.
        seed: an int or a ``(2,)`` int tensor; the same seed gives the same corruption.

    Returns:
        The corrupted images, of the same shape and dtype.

    Example:
        >>> foggy = corrupt(images, "fog", severity=5, seed=0)
    """
    import tensorflow as tf

    check_corruptions([name], [severity])
    x = tf.convert_to_tensor(images)
    dtype = x.dtype
    if x.shape.rank not in (3, 4) or x.shape[-1] not in (1, 3):
        raise ValueError(f"corrupt takes images (H, W, C) or (N, H, W, C) with 1 or 3 channels; got shape {x.shape}")
    single = x.shape.rank == 3
    if single:
        x = x[None]
    x = tf.cast(x, tf.float32) / 255.0 if dtype == tf.uint8 else tf.cast(x, tf.float32)
    # Spatial constants shape the kernels, so they scale with the static size (32 where unknown).
    static = min(x.shape[1] or 32, x.shape[2] or 32)
    seed_tensor = tf.random.experimental.stateless_fold_in(_seed(tf, seed), COMMON_CORRUPTIONS.index(name) * 8 + severity)
    out = tf.clip_by_value(_common(tf, name, x, severity, seed_tensor, static / 32.0), 0.0, 1.0)
    if single:
        out = out[0]
    if dtype == tf.uint8:
        return tf.cast(tf.round(out * 255.0), tf.uint8)
    return tf.cast(out, dtype)


def corruption_stage(name: str, severity: int = 3, seed: int = 0):
    """A `tf.data` stage: ``dataset.enumerate().map(corruption_stage("fog", 3))`` corrupts the images of
    batches ``(x, ...)`` (the rest passes through), each batch with its own seed derived from `seed`."""
    import tensorflow as tf

    check_corruptions([name], [severity])

    def stage(index, example):
        if isinstance(example, tuple):
            x, rest = example[0], example[1:]
        else:
            x, rest = example, ()
        batch_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
        out = corrupt(x, name, severity, batch_seed)
        return (out, *rest) if rest else out

    return stage
