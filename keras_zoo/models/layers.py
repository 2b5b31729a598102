"""Shared building blocks for the model families.

Everything here is plain Keras: a block is a function from a tensor to a tensor, so saved `.keras`
files contain only built-in layers unless a family really needs a layer of its own (and then it is
registered as serializable in that family file).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from keras_zoo import _validate  # noqa: E402


def weight_penalty(l1: float = 0.0, l2: float = 0.0):
    """An L1/L2 kernel regulariser, or None when both are zero (keeps configs minimal)."""
    l1 = _validate.non_negative("l1", l1)
    l2 = _validate.non_negative("l2", l2)
    if l1 == 0.0 and l2 == 0.0:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def image_input(input_shape, name: str = "inputs") -> keras.KerasTensor:
    """The `keras.Input` every builder starts from, named as the serving contract expects."""
    return keras.Input(shape=tuple(input_shape), name=name)


def check_downsampling(input_shape, factor: int, model: str) -> None:
    """Refuse inputs whose spatial size cannot be halved `log2(factor)` times."""
    h, w = input_shape[0], input_shape[1]
    if h is not None and w is not None and (h < factor or w < factor):
        raise ValueError(
            f"input_shape {tuple(input_shape)} is too small for {model!r}: it downsamples by "
            f"{factor}, so height and width must be >= {factor} (lower `depth` or resize the data)"
        )


def conv_bn_act(x, filters: int, kernel_size: int = 3, strides: int = 1, activation="relu",
                regularizer=None, name: str = "conv"):
    """Conv (no bias, batch-norm follows) -> batch-norm -> activation."""
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                            kernel_initializer="he_normal", kernel_regularizer=regularizer,
                            name=f"{name}_conv")(x)
    # momentum 0.9 (Keras defaults to 0.99): on the small sets of this zoo an epoch is a few dozen
    # steps, and with 0.99 the inference-mode statistics lag far behind the trained weights.
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    return x


def classification_head(x, num_classes: int, dropout: float = 0.0, regularizer=None,
                        temperature: float = 1.0, name: str = "head"):
    """Optional dropout -> dense logits -> (logits / temperature) -> softmax probabilities.

    The softmax runs in float32 so mixed-precision models still output well-formed probabilities.
    """
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=regularizer, name=f"{name}_logits")(x)
    if temperature != 1.0:
        x = keras.layers.Rescaling(1.0 / temperature, name=f"{name}_temperature")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def check_divisible(input_shape, factor: int, model: str) -> None:
    """Refuse inputs an encoder-decoder cannot halve `log2(factor)` times and double back exactly."""
    check_downsampling(input_shape, factor, model)
    h, w = input_shape[0], input_shape[1]
    if h % factor or w % factor:
        raise ValueError(
            f"input_shape {tuple(input_shape)} does not suit {model!r}: it halves the resolution to "
            f"1/{factor} and doubles it back, so height and width must be multiples of {factor} "
            f"(change `depth` or resize the data)"
        )


def pooled_features(model, label: str):
    """The tensor a classifier's head starts from: the ``"pool"`` layer's output (the convention of
    keras_zoo classifiers), else the input of its ``head_dropout``/``head_logits`` layer."""
    names = {layer.name for layer in model.layers}
    if "pool" in names:
        return model.get_layer("pool").output
    for head in ("head_dropout", "head_logits"):
        if head in names:
            return model.get_layer(head).input
    raise ValueError(f"{label} has no feature layer to cut at: a layer named 'pool' (the convention of "
                     "keras_zoo classifiers) or a 'head_logits' head")


def feature_extractor(model, label: str, pooling: str | None = "avg"):
    """A classifier without its head: pooled features (`pooling` "avg" keeps the model's own pool,
    "max" max-pools its feature maps instead) or, with ``pooling=None``, the feature maps."""
    _validate.one_of("pooling", pooling, ("avg", "max", None))
    features = pooled_features(model, label)
    if pooling != "avg":
        try:
            maps = model.get_layer("pool").input
        except ValueError:
            raise ValueError(f"{label} has no 'pool' layer whose feature maps pooling={pooling!r} needs") from None
        features = maps if pooling is None else keras.layers.GlobalMaxPooling2D(name="pool_max")(maps)
    return keras.Model(model.inputs, features, name=model.name)
POOLINGS = ("avg", "max", None)


def check_pooled_head(include_top, pooling, dropout) -> float:
    """Check the arguments of `pooled_head`; returns the dropout rate."""
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, got {include_top!r}")
    _validate.one_of("pooling", pooling, POOLINGS)
    if include_top and pooling == "max":
        raise ValueError("pooling='max' is for include_top=False; the classifier head pools by averaging")
    return _validate.rate("dropout", dropout)


def pooled_head(x, num_classes: int, include_top: bool, pooling, dropout: float):
    """Feature maps -> the layer ``"pool"`` (where `finetune` cuts) -> a classification head.

    With ``include_top=False`` the model ends at the pooled features (``pooling="avg"|"max"``) or,
    with ``pooling=None``, at the feature maps themselves.
    """
    if include_top or pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    if include_top:
        x = classification_head(x, num_classes, dropout=dropout)
    return x
