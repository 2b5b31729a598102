"""Tuning: KerasTuner search spaces for every registered model, `tune()`, and named presets.

The search space of a model is read from its registry spec (architecture knobs, defaults from the
builder's signature) plus the recipe knobs every model shares (learning rate, weight decay, batch
size, augmentation strength); every hyperparameter's default is the registry/recipe value, so the
first trial of every search is exactly ``create_model(name)`` trained with its recipe.

Imports are lazy: presets live in `keras_zoo.presets` (standard library only, read by the
factory), and KerasTuner is imported only when a search starts.
"""

from __future__ import annotations

from keras_zoo._lazy import lazy_names

_API = {
    "tune": "keras_zoo.tuning.search",
    "TuneResult": "keras_zoo.tuning.search",
    "TUNERS": "keras_zoo.tuning.search",
    "ZooHyperModel": "keras_zoo.tuning.hypermodel",
    "search_space": "keras_zoo.tuning.space",
    "Param": "keras_zoo.tuning.space",
    "RECIPE_KNOBS": "keras_zoo.tuning.space",
    "list_presets": "keras_zoo.presets",
    "read_preset": "keras_zoo.presets",
    "delete_preset": "keras_zoo.presets",
    "preset_dir": "keras_zoo.presets",
}

__all__ = sorted(_API)


__getattr__, __dir__ = lazy_names(__name__, _API, globals())
