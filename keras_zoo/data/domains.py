"""Building a shifted domain from two image folders: digits blended with colour photos (MNIST-M).

Ganin & Lempitsky (ICML 2015) built MNIST-M by blending each MNIST digit with a random patch of a
colour photo from BSDS500: every output pixel is ``|patch - digit|`` per channel, so strokes take the
photo's colours inverted and the background is the photo itself. `blend_with_photos` does the same
with any folder of digits (or other grey images) and any folder of photos.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Bounded reads: a photo or digit larger than this is refused rather than decoded.
MAX_PIXELS = 4096 * 4096


def _images_under(folder: pathlib.Path) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read(path, mode: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        if image.width * image.height > MAX_PIXELS:
            raise ValueError(f"{path} has {image.width}x{image.height} pixels, more than {MAX_PIXELS} accepted")
        return np.asarray(image.convert(mode))


def _check_scale(photo_scale) -> float:
    if isinstance(photo_scale, bool) or not isinstance(photo_scale, (int, float)) or not 1 <= photo_scale <= 64:
        raise ValueError(f"photo_scale must be a number from 1 to 64 (how many times the photos are enlarged "
                         f"before a patch is cut), got {photo_scale!r}")
    return float(photo_scale)


def _fits(photo_shape, h: int, w: int, scale: float) -> bool:
    """Whether a patch of h x w output pixels, scale output pixels a photo pixel, fits in the photo."""
    return photo_shape[0] - 1 >= (h - 1) / scale and photo_shape[1] - 1 >= (w - 1) / scale


def _corners(rng, photo_shape, n: int, h: int, w: int, scale: float):
    """Top-left corners (in photo pixels) of n patches: whole pixels at scale 1 (a plain crop), anywhere
    the enlarged patch fits otherwise."""
    if scale == 1.0:
        return (rng.integers(photo_shape[0] - h + 1, size=n).astype(np.float64),
                rng.integers(photo_shape[1] - w + 1, size=n).astype(np.float64))
    return (rng.uniform(0.0, photo_shape[0] - 1 - (h - 1) / scale, size=n),
            rng.uniform(0.0, photo_shape[1] - 1 - (w - 1) / scale, size=n))


def _patches(photos, which, tops, lefts, h: int, w: int, scale: float) -> np.ndarray:
    """float32 (n, h, w, 3) patches of `photos` (M, H, W, 3) enlarged `scale` times (bilinear): output
    pixel (i, j) of patch k samples photo `which[k]` at (tops[k] + i / scale, lefts[k] + j / scale).
    At scale 1 with whole-pixel corners this is a plain crop."""
    rows = tops[:, None] + np.arange(h)[None, :] / scale
    cols = lefts[:, None] + np.arange(w)[None, :] / scale
    r0 = np.clip(np.floor(rows).astype(np.int64), 0, photos.shape[1] - 1)
    c0 = np.clip(np.floor(cols).astype(np.int64), 0, photos.shape[2] - 1)
    r1 = np.minimum(r0 + 1, photos.shape[1] - 1)
    c1 = np.minimum(c0 + 1, photos.shape[2] - 1)
    fr = (rows - r0)[:, :, None, None].astype(np.float32)
    fc = (cols - c0)[:, None, :, None].astype(np.float32)
    k = np.asarray(which)[:, None, None]

    def at(r, c):
        return photos[k, r[:, :, None], c[:, None, :]].astype(np.float32)

    top = at(r0, c0) * (1 - fc) + at(r0, c1) * fc
    bottom = at(r1, c0) * (1 - fc) + at(r1, c1) * fc
    return top * (1 - fr) + bottom * fr


def blend_with_photos(digits_dir, photos_dir, out_dir, *, seed: int = 0, overwrite: bool = False,
                      photo_scale: float = 1) -> dict:
    """Write every image of `digits_dir` blended with a random patch of a photo of `photos_dir`.

    The layout of `digits_dir` is kept (``train/3/x.png`` becomes ``out_dir/train/3/x.png``), so class
    folders stay class folders. The photos are shuffled (seeded) and dealt into disjoint pools, one per
    top-level sub-folder of `digits_dir` (``train``, ``test``...), so no photo's patches appear in two
    splits. Each output is ``|patch - digit|`` per channel (RGB, uint8), the patch a random crop of the
    digit's size from a random photo of the pool (photos smaller than a digit are skipped).

    Args:
        digits_dir: folder of grey images (any depth), e.g. class folders of MNIST digits.
        photos_dir: folder of colour photos (any depth).
        out_dir: where the blended images go; written beside, then moved into place whole.
        seed: seeds the photo pools, the photo of each digit and the patch position.
        overwrite: replace an existing `out_dir`.
        photo_scale: enlarge the photos this many times (bilinear) before cutting the patch. MNIST-M's
            patches are 28x28 crops of 481x321 BSDS500 photos, a few percent of a scene; a 28x28 crop of
            a 32x32 photo is the whole scene, with object edges as fine as the strokes. At 4 a patch
            spans 7x7 photo pixels (a fifth of a 32x32 photo). 1: a plain crop.

    Returns:
        ``{"images": n, "photos": m, "splits": {split: count}}``.

    Example:
        >>> blend_with_photos("mnist/", "photos/", "mnist_m/")
    """
    scale = _check_scale(photo_scale)
    digits_dir, photos_dir, out_dir = (pathlib.Path(p) for p in (digits_dir, photos_dir, out_dir))
    for name, folder in (("digits_dir", digits_dir), ("photos_dir", photos_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{name} {str(folder)!r} is not a folder")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{str(out_dir)!r} exists; pass overwrite=True to replace it")
    digits = _images_under(digits_dir)
    photos = _images_under(photos_dir)
    if not digits:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under digits_dir {str(digits_dir)!r}")
    if not photos:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under photos_dir {str(photos_dir)!r}")
    rng = np.random.default_rng(seed)
    groups = sorted({p.relative_to(digits_dir).parts[0] if len(p.relative_to(digits_dir).parts) > 1 else ""
                     for p in digits})
    order = rng.permutation(len(photos))
    pools = {group: [photos[i] for i in order[k::len(groups)]] for k, group in enumerate(groups)}
    if any(not pool for pool in pools.values()):
        raise ValueError(f"{len(photos)} photos cannot give each of {len(groups)} splits photos of its own")
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    counts: dict = {}
    cache: dict = {}
    try:
        for path in digits:
            relative = path.relative_to(digits_dir)
            group = relative.parts[0] if len(relative.parts) > 1 else ""
            digit = _read(path, "L").astype(np.int16)
            h, w = digit.shape
            pool = pools[group]
            for _ in range(100):
                photo_path = pool[int(rng.integers(len(pool)))]
                if photo_path not in cache:
                    if len(cache) > 20000:
                        cache.clear()
                    cache[photo_path] = _read(photo_path, "RGB")
                photo = cache[photo_path]
                if _fits(photo.shape, h, w, scale):
                    break
            else:
                raise ValueError(f"no photo of {str(photos_dir)!r} is large enough for a patch of {h}x{w} (the "
                                 f"size of {path}) at photo_scale {photo_scale}")
            tops, lefts = _corners(rng, photo.shape, 1, h, w, scale)
            patch = np.round(_patches(photo[None], [0], tops, lefts, h, w, scale)[0]).astype(np.int16)
            blended = np.abs(patch - digit[..., None]).astype(np.uint8)
            target = staging / relative.with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            Image.fromarray(blended, "RGB").save(target)
            counts[group or "."] = counts.get(group or ".", 0) + 1
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"images": len(digits), "photos": len(photos), "splits": counts}


def blend_arrays(digits, photos, *, seed: int = 0, photo_scale: float = 1):
    """In-memory `blend_with_photos`: each of `digits` ``(N, H, W)`` or ``(N, H, W, 1)`` blended with a
    random ``H x W`` patch of a random one of `photos` ``(M, h, w, 3)`` (h >= H, w >= W), as
    ``|patch - digit|`` per channel. uint8 in, uint8 out; floats in [0, 1] in, float32 out.
    `photo_scale` enlarges the photos before the patch is cut (see `blend_with_photos`).

    Example:
        >>> x_target = blend_arrays(x_digits, x_photos, seed=0)
    """
    digits, photos = np.asarray(digits), np.asarray(photos)
    if digits.ndim == 4 and digits.shape[-1] == 1:
        digits = digits[..., 0]
    if digits.ndim != 3 or photos.ndim != 4 or photos.shape[-1] != 3:
        raise ValueError(f"blend_arrays takes digits (N, H, W[, 1]) and photos (M, h, w, 3); got "
                         f"{digits.shape} and {photos.shape}")
    zoom = _check_scale(photo_scale)
    n, h, w = digits.shape
    if not _fits(photos.shape[1:], h, w, zoom):
        raise ValueError(f"photos of {photos.shape[1]}x{photos.shape[2]} are too small for patches of the digits' "
                         f"{h}x{w} at photo_scale {photo_scale}")
    as_uint8 = digits.dtype == np.uint8
    scale = 1.0 if as_uint8 else 255.0
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)
    tops, lefts = _corners(rng, photos.shape[1:], n, h, w, zoom)
    patches = _patches(photos, which, tops, lefts, h, w, zoom)
    if photos.dtype == np.uint8 and zoom != 1.0:
        patches = np.round(patches)  # what an enlarged uint8 photo would hold
    patches *= 1.0 if photos.dtype == np.uint8 else 255.0
    blended = np.abs(patches - digits.astype(np.float32)[..., None] * scale)
    return np.round(blended).astype(np.uint8) if as_uint8 else (blended / 255.0).astype(np.float32)
