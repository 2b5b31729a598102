"""keras_zoo: a registry of Keras 3 models with training recipes, tf.data pipelines, tuning and export.

The public API is imported lazily, so `import keras_zoo` (and the CLI's `list`) stays fast and does
not load TensorFlow until a model, pipeline or export is actually needed.
"""

from __future__ import annotations

import os

from keras_zoo._lazy import lazy_names
from keras_zoo._version import __version__  # noqa: F401

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_API = {
    "create_model": "keras_zoo.factory",
    "list_models": "keras_zoo.factory",
    "model_info": "keras_zoo.factory",
    "get_spec": "keras_zoo.factory",
    "register_model": "keras_zoo.registry",
    "ModelSpec": "keras_zoo.registry",
    "Recipe": "keras_zoo.recipes",
    "get_recipe": "keras_zoo.recipes",
    "list_recipes": "keras_zoo.recipes",
    "register_recipe": "keras_zoo.recipes",
    "train": "keras_zoo.training",
    "evaluate": "keras_zoo.training",
    "TrainResult": "keras_zoo.training",
    "load_dataset": "keras_zoo.data",
    "load_splits": "keras_zoo.data",
    "tune": "keras_zoo.tuning.search",
    "TuneResult": "keras_zoo.tuning.search",
    "export_model": "keras_zoo.export",
    "load_export": "keras_zoo.export",
    "run_experiment": "keras_zoo.experiments",
    "list_experiments": "keras_zoo.experiments",
    "finetune": "keras_zoo.transfer",
    "FinetuneResult": "keras_zoo.transfer",
}

__all__ = sorted(_API) + ["__version__"]


__getattr__, __dir__ = lazy_names(__name__, _API, globals())
