"""Losses and metrics by name, so recipes stay plain data.

Keras's own losses and metrics are used wherever they fit; the few defined here are registered as
serializable so a compiled `.keras` file reloads in safe mode without `custom_objects`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_zoo")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing.

    Keras's `SparseCategoricalCrossentropy` has no `label_smoothing`, so the integer labels are
    one-hot encoded and passed to the categorical loss, which does.
    """

    def __init__(self, label_smoothing=0.0, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        y_true = ops.one_hot(ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32"), num_classes)
        return keras.losses.categorical_crossentropy(
            y_true, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _sparse_ce(label_smoothing=0.0):
    if label_smoothing:
        return SparseCategoricalCrossentropyWithSmoothing(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


# name -> factory(label_smoothing) ; families add their own entries here.
LOSSES = {
    "sparse_categorical_crossentropy": _sparse_ce,
    "mse": lambda label_smoothing=0.0: keras.losses.MeanSquaredError(),
    "mae": lambda label_smoothing=0.0: keras.losses.MeanAbsoluteError(),
    "binary_crossentropy": lambda label_smoothing=0.0: keras.losses.BinaryCrossentropy(
        label_smoothing=label_smoothing),
}

METRICS = {
    "accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    "top5_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
    "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
    "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
}


def check_loss(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; accepted: {sorted(LOSSES)}")


def check_metric(name: str) -> None:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; accepted: {sorted(METRICS)}")


def build_loss(name: str, label_smoothing: float = 0.0):
    check_loss(name)
    return LOSSES[name](label_smoothing=label_smoothing)


def build_metric(name: str):
    check_metric(name)
    return METRICS[name]()
