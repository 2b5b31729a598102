"""`shapes`: one filled shape per image on a contrasting background, with labels and masks.

Generation is vectorised over images (a chunk at a time, to bound memory at large sizes), so 3000
images of 32x32 take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("circle", "square", "triangle", "cross", "ellipse")
_CHUNK = 1024


def make_shapes(*, size=32, count=3000, classes=3, channels=3, noise=0.05, seed=0):
    """Return (images float32 (N, size, size, channels) in [0, 1], labels int32 (N,), masks uint8 (N, size, size)).

    Masks hold 0 for background and label + 1 on the shape's pixels.
    """
    if not 2 <= classes <= len(SHAPE_NAMES):
        raise ValueError(f"shapes: classes={classes} must be between 2 and {len(SHAPE_NAMES)} ({SHAPE_NAMES}).")
    if size < 16:
        raise ValueError(f"shapes: size={size} must be at least 16 so every shape is >= 8 px across.")
    if count < 1:
        raise ValueError(f"shapes: count={count} must be positive.")
    if channels not in (1, 3):
        raise ValueError(f"shapes: channels={channels} must be 1 or 3.")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"shapes: noise={noise} must be in [0, 1].")

    rng = np.random.default_rng(seed)
    # Balanced classes, randomly ordered.
    labels = rng.permutation(np.arange(count) % classes).astype(np.int32)
    # Outer radius from a quarter of the side (8 px at size 32, so even an ellipse's minor axis spans
    # ~10 px) up to 42% of it.
    radius = rng.uniform(max(4.5, 0.25 * size), 0.42 * size, count)
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    # Dark background with a light shape or the reverse, so every image has contrast in every channel.
    dark = rng.random(count) < 0.5
    low = rng.uniform(0.0, 0.35, (count, channels))
    high = rng.uniform(0.65, 1.0, (count, channels))
    background = np.where(dark[:, None], low, high).astype(np.float32)
    foreground = np.where(dark[:, None], high, low).astype(np.float32)
    pixel_noise = rng.standard_normal((count, size, size, channels), dtype=np.float32) * np.float32(noise)

    images = np.empty((count, size, size, channels), np.float32)
    masks = np.empty((count, size, size), np.uint8)
    centres = np.arange(size, dtype=np.float32) + 0.5
    for start in range(0, count, _CHUNK):
        part = slice(start, min(start + _CHUNK, count))
        inside = _inside(labels[part], radius[part], cx[part], cy[part], angle[part], centres)
        masks[part] = np.where(inside, labels[part, None, None] + 1, 0)
        img = np.where(inside[..., None], foreground[part, None, None, :], background[part, None, None, :])
        images[part] = np.clip(img + pixel_noise[part], 0.0, 1.0)
    return images, labels, masks


def _inside(labels, radius, cx, cy, angle, centres):
    """Boolean (n, size, size): which pixel centres fall inside each image's shape."""
    r = radius[:, None, None].astype(np.float32)
    dx = centres[None, None, :] - cx[:, None, None].astype(np.float32)
    dy = centres[None, :, None] - cy[:, None, None].astype(np.float32)
    cos = np.cos(angle)[:, None, None].astype(np.float32)
    sin = np.sin(angle)[:, None, None].astype(np.float32)
    u = dx * cos + dy * sin  # coordinates in the shape's rotated frame
    v = -dx * sin + dy * cos
    label = labels[:, None, None]
    inside = np.zeros(u.shape, bool)
    inside |= (label == 0) & (dx * dx + dy * dy <= r * r)
    inside |= (label == 1) & (np.maximum(np.abs(u), np.abs(v)) <= 0.75 * r)
    # Equilateral triangle with circumradius r: inside all three edges (inradius r / 2).
    triangle = np.ones(u.shape, bool)
    for k in range(3):
        phi = np.pi / 2 + k * 2 * np.pi / 3
        triangle &= u * np.float32(np.cos(phi)) + v * np.float32(np.sin(phi)) <= 0.5 * r
    inside |= (label == 2) & triangle
    arm, reach = 0.3 * r, 0.9 * r
    cross = ((np.abs(u) <= arm) & (np.abs(v) <= reach)) | ((np.abs(v) <= arm) & (np.abs(u) <= reach))
    inside |= (label == 3) & cross
    inside |= (label == 4) & ((u / r) ** 2 + (v / (0.6 * r)) ** 2 <= 1.0)
    return inside
