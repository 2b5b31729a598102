"""Common ground of the models that compute their own loss in `train_step` (VAE, GAN, SimCLR).

They follow the keras.io pattern: a `keras.Model` subclass that takes its sub-models in `__init__`
and overrides `train_step`/`test_step`. Each is also a Functional model (its `__init__` wires a
graph from an `Input` through its sub-models), so it has `inputs`, a `call()`, a summary, and it
saves, reloads and exports like any registry model. What they share lives here: `compile` with
the single `optimizer=` a recipe passes, optimizer variables created at compile time (so a
backup or a `.keras` file restores the optimizer state before the first step), and the compile
config that lets `keras.saving.load_model` recompile them, and `_minimise`, which under a
`tf.distribute` strategy scales each replica's gradients so that their sum (Keras's optimizer
all-reduces them) is the gradient of the mean loss over the global batch.
"""

from __future__ import annotations

import keras

from keras_zoo import distribute


def serialize(obj) -> dict:
    return keras.saving.serialize_keras_object(obj)


def deserialize(config):
    return keras.saving.deserialize_keras_object(config) if isinstance(config, dict) else config


class CustomStepModel(keras.Model):
    """Base class: subclasses define `metrics`, `train_step`, `test_step` and `_optimized_variables`,
    and name in `PARTS` the config keys that hold their serialised sub-models."""

    PARTS: tuple = ()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in cls.PARTS:
            if key in config:
                config[key] = deserialize(config[key])
        return cls(**config)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Compile with an optimizer only: the loss is part of the model's training step.

        Args:
            optimizer: a `keras.optimizers.Optimizer` (or its name).
            loss: must be None; the model computes its own objective.
            **kwargs: other `keras.Model.compile` arguments (`run_eagerly`, `jit_compile`...).
        """
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss in train_step; compile it with "
                f"loss=None (got loss={loss!r})")
        super().compile(optimizer=optimizer, **kwargs)
        self._build_optimizers()

    def _optimized_variables(self):
        return self.trainable_variables

    def _build_optimizers(self) -> None:
        # Creating the slots now (rather than at the first step) lets `load_weights` and
        # `load_model` restore the optimizer state into them; built on exactly the variables
        # the step updates, so the saved and the rebuilt optimizer have the same variables.
        self.optimizer.build(self._optimized_variables())

    def get_compile_config(self):
        if self.compiled and hasattr(self, "_compile_config"):
            return self._compile_config.serialize()
        return {}

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    @staticmethod
    def _minimise(optimizer, tape, loss, variables) -> None:
        """One `optimizer` step on `variables` down the gradient of `loss` (a mean over this
        replica's examples), scaled by 1 / replicas under a strategy (see `distribute.scale_loss`)."""
        gradients = tape.gradient(loss, variables)
        factor = distribute.scale_loss(1.0)
        if factor != 1.0:
            gradients = [None if g is None else g * factor for g in gradients]
        optimizer.apply(gradients, variables)

    @staticmethod
    def _unpack(data):
        """(inputs, targets or None) from whatever the pipeline yields: x, (x,), (x, y), (x, y, w)."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, y

    def _results(self) -> dict:
        return {m.name: m.result() for m in self.metrics}


class ObjectiveStepModel(CustomStepModel):
    """`train_step`/`test_step` of the self-supervised models with one objective (SimCLR, rotation
    prediction, IIC, the forecaster): `_objective(x, training)` returns a tuple of scalars whose first
    is minimised (with the sub-models' weight penalties); each value updates `metrics` in order."""

    def _objective(self, inputs, training):
        raise NotImplementedError

    def _track(self, values) -> dict:
        for tracker, value in zip(self.metrics, values):
            tracker.update_state(value)
        return self._results()

    def train_step(self, data):
        import tensorflow as tf

        x, _ = self._unpack(data)
        with tf.GradientTape() as tape:
            values = self._objective(x, training=True)
            objective = values[0] + sum(self.losses, 0.0)
        self._minimise(self.optimizer, tape, objective, self.trainable_variables)
        return self._track(values)

    def test_step(self, data):
        x, _ = self._unpack(data)
        return self._track(self._objective(x, training=False))
