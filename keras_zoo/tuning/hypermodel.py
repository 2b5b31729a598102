"""`ZooHyperModel`: a registered model and its recipe as a KerasTuner `HyperModel`.

`build(hp)` declares the model's search space (see `space.py`) and builds the model through the
registry; `fit(hp, model, ...)` trains it with the recipe through `keras_zoo.train`, on pipelines
from `keras_zoo.data.load_splits` loaded once per (batch size, augmentation) pair, and returns the
objective (best epoch) with the held-out metrics as ``test_<name>``.
"""

from __future__ import annotations

import math

import keras
import keras_tuner as kt

from keras_zoo import distribute, factory
from keras_zoo.recipes import get_recipe
from keras_zoo.training import build_for_data
from keras_zoo.tuning import space as space_module


class ZooHyperModel(kt.HyperModel):
    """A registry model plus its recipe, searchable by any KerasTuner tuner.

    Args:
        name: registry name (or preset).
        data: a source for `keras_zoo.data.load_splits`; only `fit` needs it. Without it, `build`
            uses the spec's default input shape and classes.
        recipe: recipe name or `Recipe`; defaults to the model's.
        space: changes to the default search space (see `search_space`).
        objective: the metric `fit` reports as the trial's score (default: the recipe's monitor).
        direction: ``"min"`` or ``"max"`` for `objective`.
        epochs: epochs per trial (default: the recipe's); Hyperband passes its own.
        seed: seeds the split, the shuffling and every trial's initial weights.
        data_options: extra `load_splits` arguments (``image_size``, ``color_mode`` ...).
        verbose: Keras `fit` verbosity inside each trial.
        strategy: a `tf.distribute` strategy or its name (see `keras_zoo.train`): each trial's
            model is built and trained under it.

    Example:
        >>> hm = ZooHyperModel("cnn_small")
        >>> model = hm.build(keras_tuner.HyperParameters())  # the defaults: create_model("cnn_small")
    """

    def __init__(self, name: str, data=None, *, recipe=None, space: dict | None = None,
                 objective: str | None = None, direction: str | None = None,
                 epochs: int | None = None, seed: int = 0, data_options: dict | None = None,
                 verbose=0, strategy=None):
        super().__init__(name=name, tunable=True)
        self.spec = factory.get_spec(name)
        self.recipe = get_recipe(recipe if recipe is not None else self.spec.recipe)
        self.params = space_module.search_space(name, self.recipe, space)
        self.data = data
        self.objective = objective or self.recipe.monitor
        self.direction = direction or self.recipe.monitor_mode
        self.epochs = epochs
        self.seed = seed
        self.data_options = dict(data_options or {})
        self.verbose = verbose
        self.strategy = distribute.resolve_strategy(strategy)
        self._splits = {}

    # === The search space ===

    def declare_hyperparameters(self, hp):
        for p in self.params.values():
            p.declare(hp)

    def values(self, hp) -> dict:
        """Decoded values of this trial, declaring any knob `hp` does not hold yet (at its default)."""
        return {k: p.declare(hp) for k, p in self.params.items()}

    def configuration(self, hp):
        """``(builder_overrides, trial_recipe)`` for the trial `hp` describes."""
        overrides, changes = space_module.split_values(self.params, self.values(hp), self.recipe)
        return overrides, space_module.trial_recipe(self.recipe, changes)

    # === Data ===

    def splits(self, recipe):
        """Train/validation/test pipelines batched and augmented as `recipe` says (cached)."""
        from keras_zoo.data import load_splits

        if self.data is None:
            raise ValueError(f"ZooHyperModel({self.spec.name!r}) was made without data; pass data= to fit")
        # Batched at the global batch the trial's recipe asks for under the strategy.
        batch_size = distribute.distribution(self.strategy, recipe.batch_size, recipe.learning_rate,
                                             recipe.batch_per_replica).global_batch_size
        key = (batch_size, tuple(recipe.augment))
        if key not in self._splits:
            self._splits[key] = load_splits(
                self.data, targets=recipe.targets, batch_size=batch_size,
                augment=recipe.augment, seed=self.seed, **self.data_options)
        return self._splits[key]

    def _info(self):
        if self.data is None:
            return None
        return self.splits(self.recipe).info

    # === KerasTuner interface ===

    def build(self, hp):
        overrides, recipe = self.configuration(hp)
        info = self._info()
        # Same seed for every trial: configurations differ by their hyperparameters, not their luck.
        keras.utils.set_random_seed(self.seed)
        # Uncompiled: `fit` trains through `keras_zoo.train`, which compiles it with the trial's
        # recipe and the data's steps per epoch (compiling here too would build the optimizer twice).
        with distribute.scope(self.strategy):
            return build_for_data(self.spec, info, recipe, overrides)

    def fit(self, hp, model, *args, callbacks=(), run_dir=None, epochs=None, initial_epoch=0,
            **kwargs):
        """Train `model` with this trial's recipe; return the best objective and held-out metrics."""
        from keras_zoo.training import train

        _, recipe = self.configuration(hp)
        if epochs is not None:
            # Hyperband: continue a model trained `initial_epoch` epochs for the rest of its budget.
            epochs = max(1, int(epochs) - int(initial_epoch))
        else:
            epochs = self.epochs  # None: the recipe's, with its `min_steps` on small data, as `train` does
        splits = self.splits(recipe)
        result = train(model, splits, recipe=recipe, epochs=epochs, run_dir=run_dir, seed=self.seed,
                       callbacks=list(callbacks), verbose=self.verbose, strategy=self.strategy)
        history = result.history.get(self.objective)
        if not history:
            raise ValueError(f"training did not report {self.objective!r}; it reported "
                             f"{sorted(result.history)}")
        finite = [v for v in history if math.isfinite(v)]
        if not finite:
            raise FloatingPointError(f"{self.objective} was never finite: {history}")
        best = max(finite) if self.direction == "max" else min(finite)
        return {self.objective: float(best),
                **{f"test_{k}": float(v) for k, v in result.metrics.items()}}
