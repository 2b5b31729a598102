"""Input corruptions for denoising and masked autoencoders, built from short spec strings.

A spec is one or more corruptions joined by ``+``, each ``kind:amount[,key=value...]``:

- ``gaussian:0.3``: add N(0, 0.3²) noise to every value, then clip to [0, 1].
- ``salt_pepper:0.1``: set 10% of the pixels (all channels of a pixel together) to 0 or 1.
- ``mask_patches:0.5,size=2[,fill=0.0][,loss=masked]``: hide exactly half of the 2x2 patches of the
  grid (the last patch row/column may be cut by the border) by setting them to `fill`. With
  ``loss=masked`` the pipeline also yields a per-pixel sample weight that is 1 on hidden pixels and 0
  elsewhere, so the loss (and the ``mse`` metric) cover only the pixels the model had to impute.

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
