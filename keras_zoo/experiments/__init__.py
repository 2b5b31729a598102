"""The lecture's experiments, runnable: each is a function that trains what it needs on built-in
data, returns a `ResultTable` and, given `plot_dir`, writes its figures as PNG files.

- `geometric_view`: what each hidden layer of an MLP does to the input plane.
- `random_labels`: Zhang et al.'s randomization tests (memorisation vs generalisation).
- `regularization`: dropout, L1/L2 penalties and early stopping on one overfitting task.
- `representations`: self-supervised encoders compared by linear probe, alignment and uniformity.
- `clustering`: IIC against k-means (raw pixels, random-weight features): accuracy and NMI.
- `forecasting`: a recurrent forecaster against copying the last step, on digit rows and waves.
- `domain_shift`: classifiers under common corruptions (mCE), and DANN against source-only training.

Every experiment takes ``size="small"|"default"`` and a ``seed``. `run_experiment(name)` is what
``keras-zoo experiment NAME`` calls.

Example:
    >>> from keras_zoo.experiments import random_labels
    >>> print(random_labels(size="small", plot_dir="plots").to_markdown())
"""

from __future__ import annotations

import importlib

from keras_zoo import _validate
from keras_zoo._lazy import lazy_names

# name -> module that defines the function of that name (imported on first use: TensorFlow loads
# only when an experiment actually runs). Module names differ from function names so that importing
# a module never shadows the function of the same name on this package.
EXPERIMENTS = {
    "geometric_view": "keras_zoo.experiments.geometric",
    "random_labels": "keras_zoo.experiments.memorization",
    "regularization": "keras_zoo.experiments.overfitting",
    "representations": "keras_zoo.experiments.probes",
    "clustering": "keras_zoo.experiments.paradigms",
    "forecasting": "keras_zoo.experiments.paradigms",
    "domain_shift": "keras_zoo.experiments.shift",
}

# Helpers the notebooks use beside the experiments themselves.
_HELPERS = {
    "CORRUPTIONS": "keras_zoo.experiments.memorization",
    "corrupt": "keras_zoo.experiments.memorization",
    "REGULARIZERS": "keras_zoo.experiments.overfitting",
    "ENCODER_MODELS": "keras_zoo.experiments.probes",
}

__all__ = ["ResultTable", "SIZES", "EXPERIMENTS", "list_experiments", "get_experiment",
           "run_experiment", *EXPERIMENTS, *_HELPERS]


def list_experiments() -> list[str]:
    """The experiment names, as ``keras-zoo experiment`` accepts them."""
    return sorted(EXPERIMENTS)


def get_experiment(name: str):
    """The experiment function called `name`; `KeyError` with close matches for unknown names."""
    if name not in EXPERIMENTS:
        raise _validate.unknown_name("experiment", name, EXPERIMENTS, f"available: {list_experiments()}")
    return getattr(importlib.import_module(EXPERIMENTS[name]), name)


def run_experiment(name: str, *, size: str = "default", plot_dir: str | None = None,
                   seed: int = 0, **kwargs) -> ResultTable:
    """Run one experiment by name.

    Args:
        name: one of `list_experiments()`.
        size: ``"small"`` or ``"default"``.
        plot_dir: where the PNG figures go (none written when None).
        seed: the experiment's seed.
        **kwargs: passed to the experiment function (e.g. ``data="moons"``).
    """
    return get_experiment(name)(size=size, plot_dir=plot_dir, seed=seed, **kwargs)


# The shared helpers too: `keras-zoo --help` lists the experiment names without importing them.
_COMMON = {"SIZES": "keras_zoo.experiments._common", "ResultTable": "keras_zoo.experiments._common"}

__getattr__, __dir__ = lazy_names(__name__, {**EXPERIMENTS, **_HELPERS, **_COMMON}, globals())
