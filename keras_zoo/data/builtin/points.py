"""`moons` and `spirals`: 2-D binary classification points, standardised to zero mean and unit variance."""

from __future__ import annotations

import numpy as np


def _check(count, noise):
    if count < 2:
        raise ValueError(f"count={count} must be at least 2.")
    if noise < 0:
        raise ValueError(f"noise={noise} must be non-negative.")


def _standardise(x):
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)


def make_moons(*, count=1000, noise=0.1, seed=0):
    """Two interleaving half circles (scikit-learn's make_moons); noise is the std in units of the radius."""
    from sklearn.datasets import make_moons as sk_make_moons

    _check(count, noise)
    x, y = sk_make_moons(n_samples=count, noise=noise, random_state=seed)
    return _standardise(x), y.astype(np.int32)


def make_spirals(*, count=1000, noise=0.1, turns=1.5, seed=0):
    """Two interleaved Archimedean spiral arms.

    The spiral is scaled so neighbouring arms lie one unit apart; `noise` is the Gaussian std in those
    units, so noise=0.1 is as clean as moons at noise=0.1.
    """
    _check(count, noise)
    if turns <= 0:
        raise ValueError(f"turns={turns} must be positive.")
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 2).astype(np.int32)
    start, stop = np.pi / 2, 2 * np.pi * turns + np.pi / 2
    # sqrt spreads points evenly along the arm rather than crowding the centre.
    theta = start + np.sqrt(rng.random(count)) * (stop - start)
    r = theta / np.pi  # radius grows by 2 per turn, so the two arms are 1 apart
    phase = theta + np.pi * labels
    x = np.stack([r * np.cos(phase), r * np.sin(phase)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    return _standardise(x), labels
