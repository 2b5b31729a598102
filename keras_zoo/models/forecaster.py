"""Future prediction (the `forecaster` family): a recurrent net that reads a sequence and predicts
what comes next.

The lecture's RNN beside the autoencoder: an LSTM or GRU (Keras layers; Hochreiter & Schmidhuber
1997, Cho et al. 2014) reads steps 0..t and a linear read-out predicts step t+1; training minimises
the squared error of every such one-step prediction (teacher forcing), so no labels are needed.
Inputs are sequences ``(T, F)`` (time series) or images ``(H, W, C)`` read as H rows of W*C values,
top to bottom, so a digit's lower rows are predicted from its upper ones. The recurrent state after
the whole sequence is the representation: `model.encoder` maps inputs to it, and the ``forecast``
serving signature returns it beside the predictions. `rollout` continues a sequence for any
number of steps by feeding predictions back in.
"""

from __future__ import annotations

import numpy as np

import keras
from keras import ops

from keras_zoo import _validate
from keras_zoo.models._custom_step import ObjectiveStepModel, serialize
from keras_zoo.registry import Choice, Float, Int, register_model

CELLS = ("lstm", "gru")


def as_sequence(inputs, steps: int, features: int):
    """Inputs ``(batch, T, F)`` or images ``(batch, H, W, C)`` as ``(batch, steps, features)``."""
    return ops.reshape(inputs, (-1, steps, features))


@keras.saving.register_keras_serializable(package="keras_zoo")
class Forecaster(ObjectiveStepModel):
    """One-step-ahead prediction with a recurrent `core`, trained by teacher forcing.

    Called on inputs it returns ``{"predictions": (batch, T, F), "state": (batch, units)}``:
    ``predictions[:, t]`` is the prediction of step t+1 made after reading steps 0..t (the last
    one predicts the step after the sequence), ``state`` the recurrent state after all T steps.

    Args:
        core: `keras.Model` sequence ``(batch, None, F)`` -> ``[predictions (batch, None, F),
            top-layer outputs (batch, None, units)]``.
        input_shape: the model's input shape: ``(T, F)`` or an image shape ``(H, W, C)``.
        context: the loss counts predictions of steps ``context..T-1`` only (the first steps have
            too little history to predict from).

    Example:
        >>> model = keras_zoo.create_model("forecaster", input_shape=(8, 8, 1))  # digits, row by row
        >>> model.compile(optimizer="adam"); model.fit(images, epochs=50)
        >>> rows = model.rollout(images[:, :4], steps=4)  # the lower half from the upper half
    """

    PARTS = ("core",)

    def __init__(self, core, input_shape, context=1, **kwargs):
        input_shape = tuple(int(d) for d in input_shape)
        steps, features = input_shape[0], int(np.prod(input_shape[1:]))
        context = _validate.positive_int("context", context)
        if context >= steps:
            raise ValueError(f"context={context} must be smaller than the number of steps {steps} "
                             f"of input shape {input_shape}")
        if int(core.inputs[0].shape[-1]) != features:
            raise ValueError(f"core reads {core.inputs[0].shape[-1]} features per step; input shape "
                             f"{input_shape} has {features}")
        inputs = keras.Input(shape=input_shape, name="inputs")
        sequence = keras.layers.Reshape((steps, features), name="as_sequence")(inputs)
        predictions, states = core(sequence)
        state = LastStep(name="last_state")(states)
        super().__init__(inputs, {"predictions": predictions, "state": state}, **kwargs)
        self.core = core
        self.steps, self.features = steps, features
        self.sequence_shape = input_shape
        self.context = context
        self.encoder = keras.Model(inputs, state, name="encoder")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.baseline_tracker = keras.metrics.Mean(name="copy_last_mse")

    @property
    def metrics(self):
        return [self.loss_tracker, self.baseline_tracker]

    # === Inference API ===

    def forecast_outputs(self, inputs, training=False):
        """``{"next_step", "predictions", "state"}`` of a batch (see the ``forecast`` signature)."""
        predictions, states = self.core(as_sequence(inputs, self.steps, self.features), training=training)
        return {"next_step": predictions[:, -1], "predictions": predictions, "state": states[:, -1]}

    def rollout(self, context, steps: int):
        """Continue sequences for `steps` steps, feeding each prediction back in.

        Args:
            context: ``(batch, t, F)`` sequences, or ``(batch, t, W, C)`` image rows (any t >= 1).
            steps: how many steps to predict.

        Returns:
            numpy ``(batch, steps, F)`` (image rows come back as ``(batch, steps, W, C)``).
        """
        steps = _validate.positive_int("steps", steps)
        context = np.asarray(context, dtype="float32")
        row_shape = context.shape[2:]
        if int(np.prod(row_shape)) != self.features:
            raise ValueError(f"context steps of shape {row_shape} do not hold the {self.features} "
                             f"features per step this model reads")
        sequence = context.reshape(len(context), -1, self.features)
        produced = []
        for _ in range(steps):
            predictions, _ = self.core(sequence, training=False)
            step = np.asarray(predictions[:, -1:])
            produced.append(step)
            sequence = np.concatenate([sequence, step], axis=1)
        return np.concatenate(produced, axis=1).reshape(len(context), steps, *row_shape)

    def errors(self, inputs):
        """Mean squared one-step error of the model and of copying the last step, over steps
        ``context..T-1``, per example: ``(model_mse, copy_last_mse)``, each ``(batch,)``."""
        sequence = ops.cast(as_sequence(inputs, self.steps, self.features), "float32")
        predictions, _ = self.core(sequence[:, :-1], training=False)
        return self._errors(sequence, predictions)

    def _errors(self, sequence, predictions):
        target = sequence[:, self.context:]
        predicted = ops.cast(predictions, "float32")[:, self.context - 1:]
        copied = sequence[:, self.context - 1:-1]
        return (ops.mean(ops.square(predicted - target), axis=(1, 2)),
                ops.mean(ops.square(copied - target), axis=(1, 2)))

    # === Training ===

    def _objective(self, inputs, training):
        sequence = ops.cast(as_sequence(inputs, self.steps, self.features), "float32")
        predictions, _ = self.core(sequence[:, :-1], training=training)
        model_mse, copy_mse = self._errors(sequence, predictions)
        return ops.mean(model_mse), ops.mean(copy_mse)

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "core": serialize(self.core),
                "input_shape": list(self.sequence_shape), "context": self.context}



@keras.saving.register_keras_serializable(package="keras_zoo")
class LastStep(keras.layers.Layer):
    """``(batch, T, units)`` -> ``(batch, units)``: the output after the last step."""

    def call(self, inputs):
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def recurrent_core(features: int, cell: str, units: int, depth: int, dropout: float) -> keras.Model:
    """sequence (batch, None, F) -> [one-step predictions (batch, None, F), top outputs (batch, None, units)]."""
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    sequence = keras.Input(shape=(None, features), name="sequence")
    x = sequence
    for i in range(depth):
        x = layer(units, return_sequences=True, dropout=dropout, name=f"{cell}{i}")(x)
    predictions = keras.layers.Dense(features, dtype="float32", name="next_step")(x)
    return keras.Model(sequence, [predictions, x], name="core")


@register_model(family="forecaster", task="forecasting", input_shape=(28, 28, 1), recipe="forecaster",
                signatures=("forecast",), input_ranks=(2, 3), test_input_shape=(8, 8, 1),
                search_space={"cell": Choice(CELLS), "units": Int(32, 256, step=32), "depth": Int(1, 2),
                              "dropout": Float(0.0, 0.3)})
def forecaster(input_shape, cell="lstm", units=128, depth=1, dropout=0.0, context=1):
    """Recurrent future prediction (LSTM/GRU): reads a sequence, or an image row by row, and predicts the next step."""
    cell = _validate.one_of("cell", cell, CELLS)
    units = _validate.positive_int("units", units)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    if input_shape[0] < 2:
        raise ValueError(f"forecaster needs at least 2 steps (rows); got input_shape {tuple(input_shape)}")
    features = int(np.prod(input_shape[1:]))
    core = recurrent_core(features, cell, units, depth, dropout)
    return Forecaster(core, input_shape, context=context, name="forecaster")
