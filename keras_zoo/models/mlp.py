"""Dense networks (the `mlp` family): the lecture's net and wider/deeper variants.

Inputs of any rank are flattened first, so the same builders serve 2-D points (`moons`) and images.
"""

from __future__ import annotations

import keras

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.registry import Choice, Float, Int, register_model

SEARCH_SPACE = {
    "width": Int(16, 512, step=16),
    "depth": Int(1, 4),
    "dropout": Float(0.0, 0.5),
    "l2": Choice((0.0, 1e-5, 1e-4, 1e-3)),
}
_COMMON = dict(family="mlp", task="classification", input_shape=(8, 8, 1), num_classes=10,
               recipe="classifier", input_ranks=(1, 2, 3), search_space=SEARCH_SPACE)


def _create_mlp(input_shape, num_classes, width, depth, dropout, l1, l2, activation, name):
    width = _validate.positive_int("width", width)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    _validate.one_of("activation", activation, ("relu", "gelu", "tanh", "sigmoid", "elu", "silu"))
    penalty = layers.weight_penalty(l1, l2)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i in range(depth):
        x = keras.layers.Dense(width, kernel_regularizer=penalty, name=f"dense_{i}")(x)
        x = keras.layers.Activation(activation, name=f"{activation}_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = layers.classification_head(x, num_classes, regularizer=penalty)
    return keras.Model(inputs, outputs, name=name)


@register_model(**_COMMON)
def mlp_lecture(input_shape, num_classes=10, width=64, depth=2, dropout=0.0, l1=0.0, l2=0.0,
                activation="relu"):
    """The lecture's net: linear -> relu -> linear -> relu -> linear -> softmax."""
    return _create_mlp(input_shape, num_classes, width, depth, dropout, l1, l2, activation,
                       "mlp_lecture")


@register_model(**_COMMON)
def mlp_wide(input_shape, num_classes=10, width=512, depth=1, dropout=0.2, l1=0.0, l2=0.0,
             activation="relu"):
    """One wide hidden layer (512 units) with dropout."""
    return _create_mlp(input_shape, num_classes, width, depth, dropout, l1, l2, activation, "mlp_wide")


@register_model(**_COMMON)
def mlp_deep(input_shape, num_classes=10, width=256, depth=4, dropout=0.2, l1=0.0, l2=1e-5,
             activation="relu"):
    """Four hidden layers of 256 units with dropout and a light L2 penalty."""
    return _create_mlp(input_shape, num_classes, width, depth, dropout, l1, l2, activation, "mlp_deep")
