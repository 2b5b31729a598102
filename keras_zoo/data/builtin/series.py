"""`series`: procedural time series, one periodic waveform per example, labelled by its kind.

Each example is `length` steps of one waveform (sine, triangle, square with soft edges, sawtooth)
with a random period, phase and amplitude, plus Gaussian noise. The shape of the wave is what
makes the next step predictable from the past (and what a forecaster's state must hold), so the
kind of wave serves as the label for probing that state.
"""

from __future__ import annotations

import numpy as np

WAVE_NAMES = ("sine", "triangle", "square", "sawtooth")


def make_series(*, count=2000, length=32, noise=0.05, seed=0):
    """(x, labels): x float32 of shape (count, length, 1), labels int32 in 0..3 (`WAVE_NAMES`)."""
    if count < 2:
        raise ValueError(f"count={count} must be at least 2.")
    if length < 4:
        raise ValueError(f"length={length} must be at least 4.")
    if noise < 0:
        raise ValueError(f"noise={noise} must be non-negative.")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(WAVE_NAMES), size=count).astype(np.int32)
    period = rng.uniform(8.0, 20.0, size=(count, 1))
    phase = rng.uniform(0.0, 1.0, size=(count, 1))
    amplitude = rng.uniform(0.5, 1.0, size=(count, 1))
    cycles = np.arange(length)[None, :] / period + phase  # position in cycles
    frac = cycles % 1.0
    waves = np.stack([
        np.sin(2 * np.pi * cycles),
        4.0 * np.abs(frac - 0.5) - 1.0,
        np.tanh(4.0 * np.sin(2 * np.pi * cycles)),
        2.0 * frac - 1.0,
    ])  # (kinds, count, length)
    x = amplitude * waves[labels, np.arange(count)] + noise * rng.standard_normal((count, length))
    return x[..., None].astype(np.float32), labels
