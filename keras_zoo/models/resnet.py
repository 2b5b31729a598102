"""Residual networks (the `resnet` family) of He et al. 2016.

CIFAR-style nets (`resnet20/32/56`, 6n+2 layers, three stages of 16-32-64 filters, option-A identity
shortcuts that subsample and zero-pad channels) for small images, and ImageNet-style nets
(`resnet18/34` with basic blocks, `resnet50` with bottleneck blocks, stride in the 3x3 conv as in
torchvision's "v1.5") for large ones. Convolutions that feed batch-norm have no bias, so the
trainable parameter counts are those of the reference models.

Every stage ends in a layer named ``stage{i}_out`` (and the ImageNet stem in ``stem_out``), so
`resnet_features` can cut a backbone into a multi-scale feature extractor (U-Net encoders,
fine-tuning, feature visualisation).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.registry import Choice, Float, Int, register_model

POOLINGS = layers.POOLINGS
SHORTCUTS = ("pad", "projection")


@keras.saving.register_keras_serializable(package="keras_zoo")
class PadShortcut(keras.layers.Layer):
    """Option-A shortcut of He et al.: subsample by `strides` and zero-pad the channels to `filters`.

    It has no weights, which is what keeps the CIFAR nets at their published sizes (0.27 M
    parameters for resnet20).
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, x):
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.strides
        return (b, None if h is None else -(-h // s), None if w is None else -(-w // s), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


# === Blocks ===


def _conv_bn(x, filters, kernel_size, strides, name):
    """Conv without bias (batch-norm follows) -> batch-norm.

    Every batch-norm starts at gamma = 1, as in He et al. Starting the last one of each residual
    branch at zero (Goyal et al.'s trick for huge batches) stalled resnet20 on `shapes` at chance
    for ten epochs; with gamma = 1 it passes 99% validation accuracy by the fifth.
    """
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)


def _shortcut(x, filters, strides, kind, name):
    if strides == 1 and x.shape[-1] == filters:
        return x
    if kind == "pad":
        return PadShortcut(filters, strides, name=f"{name}_shortcut")(x)
    return _conv_bn(x, filters, 1, strides, name=f"{name}_shortcut")


def basic_block(x, filters, strides=1, shortcut="projection", name="block"):
    """Two 3x3 conv-bn layers plus a shortcut, then relu (resnet18/34 and the CIFAR nets)."""
    y = _conv_bn(x, filters, 3, strides, name=f"{name}_1")
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, 1, name=f"{name}_2")
    y = keras.layers.Add(name=f"{name}_add")([_shortcut(x, filters, strides, shortcut, name), y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(x, filters, strides=1, shortcut="projection", name="block", expansion=4):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand to 4x `filters`, plus a shortcut (resnet50)."""
    y = _conv_bn(x, filters, 1, 1, name=f"{name}_1")
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, strides, name=f"{name}_2")
    y = keras.layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = _conv_bn(y, filters * expansion, 1, 1, name=f"{name}_3")
    y = keras.layers.Add(name=f"{name}_add")(
        [_shortcut(x, filters * expansion, strides, shortcut, name), y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


# === Builders ===


def _finish(x, inputs, num_classes, include_top, pooling, dropout, name):
    return keras.Model(inputs, layers.pooled_head(x, num_classes, include_top, pooling, dropout), name=name)


def _cifar_resnet(input_shape, num_classes, depth, width, shortcut, dropout, include_top, pooling, name):
    """6n+2 layers: a 3x3 stem, then three stages of n basic blocks at `width`, 2x and 4x filters."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR-style ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
    width = _validate.positive_int("width", width)
    _validate.one_of("shortcut", shortcut, SHORTCUTS)
    dropout = layers.check_pooled_head(include_top, pooling, dropout)
    layers.check_downsampling(input_shape, 4, name)
    blocks = (depth - 2) // 6

    inputs = layers.image_input(input_shape)
    x = _conv_bn(inputs, width, 3, 1, name="stem")
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for stage in range(3):
        for b in range(blocks):
            strides = 2 if stage > 0 and b == 0 else 1
            x = basic_block(x, width * 2 ** stage, strides, shortcut, name=f"stage{stage + 1}_block{b + 1}")
        x = keras.layers.Identity(name=f"stage{stage + 1}_out")(x)
    return _finish(x, inputs, num_classes, include_top, pooling, dropout, name)


def _imagenet_resnet(input_shape, num_classes, blocks, bottleneck, width, dropout, include_top,
                     pooling, name):
    """7x7/2 stem and 3x3/2 max-pool, then four stages at `width`, 2x, 4x and 8x filters (stride 32)."""
    width = _validate.positive_int("width", width)
    dropout = layers.check_pooled_head(include_top, pooling, dropout)
    layers.check_downsampling(input_shape, 32, name)
    block = bottleneck_block if bottleneck else basic_block

    inputs = layers.image_input(input_shape)
    x = _conv_bn(inputs, width, 7, 2, name="stem")
    x = keras.layers.Activation("relu", name="stem_out")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, n in enumerate(blocks):
        for b in range(n):
            strides = 2 if stage > 0 and b == 0 else 1
            x = block(x, width * 2 ** stage, strides, "projection", name=f"stage{stage + 1}_block{b + 1}")
        x = keras.layers.Identity(name=f"stage{stage + 1}_out")(x)
    return _finish(x, inputs, num_classes, include_top, pooling, dropout, name)


FEATURE_LAYERS = ("stem_out", "stage1_out", "stage2_out", "stage3_out", "stage4_out")


def resnet_features(model, layer_names=None, name="features") -> keras.Model:
    """A model from the ResNet's input to its multi-scale feature maps, shallowest first.

    Args:
        model: a model of the `resnet` family (with or without its top).
        layer_names: which layers to output; default is every stage output the model has
            (``stem_out`` at stride 2 for ImageNet-style nets, then ``stage1_out`` ...).
        name: name of the returned model.

    Returns:
        A `keras.Model` sharing the ResNet's layers (and weights) with one output per feature map.

    Example:
        >>> backbone = keras_zoo.create_model("resnet18", input_shape=(64, 64, 3), include_top=False)
        >>> [f.shape for f in resnet_features(backbone).outputs]   # strides 2, 4, 8, 16, 32
    """
    present = [layer.name for layer in model.layers]
    if layer_names is None:
        layer_names = [n for n in FEATURE_LAYERS if n in present]
    missing = [n for n in layer_names if n not in present]
    if missing or not layer_names:
        raise ValueError(f"model {model.name!r} has no layer(s) {missing or layer_names}; "
                         f"ResNet feature layers are {[n for n in FEATURE_LAYERS if n in present]}")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [model.get_layer(n).output for n in layer_names], name=name)


# === Registered variants ===

_CIFAR = dict(family="resnet", task="classification", input_shape=(32, 32, 3), num_classes=10,
              recipe="resnet", test_input_shape=(8, 8, 3),
              search_space={"width": Int(8, 32, step=8), "dropout": Float(0.0, 0.5),
                            "shortcut": Choice(SHORTCUTS)})
_IMAGENET = dict(family="resnet", task="classification", input_shape=(224, 224, 3), num_classes=1000,
                 recipe="resnet", test_input_shape=(32, 32, 3),
                 search_space={"width": Int(16, 64, step=16), "dropout": Float(0.0, 0.5)})


@register_model(**_CIFAR)
def resnet20(input_shape, num_classes=10, width=16, shortcut="pad", dropout=0.0, include_top=True,
             pooling="avg"):
    """CIFAR-style ResNet-20 (3x3 basic blocks per stage, 0.27 M parameters at 10 classes)."""
    return _cifar_resnet(input_shape, num_classes, 20, width, shortcut, dropout, include_top, pooling,
                         "resnet20")


@register_model(**_CIFAR)
def resnet32(input_shape, num_classes=10, width=16, shortcut="pad", dropout=0.0, include_top=True,
             pooling="avg"):
    """CIFAR-style ResNet-32 (5 basic blocks per stage, 0.46 M parameters)."""
    return _cifar_resnet(input_shape, num_classes, 32, width, shortcut, dropout, include_top, pooling,
                         "resnet32")


@register_model(**_CIFAR)
def resnet56(input_shape, num_classes=10, width=16, shortcut="pad", dropout=0.0, include_top=True,
             pooling="avg"):
    """CIFAR-style ResNet-56 (9 basic blocks per stage, 0.85 M parameters)."""
    return _cifar_resnet(input_shape, num_classes, 56, width, shortcut, dropout, include_top, pooling,
                         "resnet56")


@register_model(**_IMAGENET)
def resnet18(input_shape, num_classes=1000, width=64, dropout=0.0, include_top=True, pooling="avg"):
    """ImageNet-style ResNet-18 (basic blocks 2-2-2-2, 11.7 M parameters at 1000 classes)."""
    return _imagenet_resnet(input_shape, num_classes, (2, 2, 2, 2), False, width, dropout, include_top,
                            pooling, "resnet18")


@register_model(**_IMAGENET)
def resnet34(input_shape, num_classes=1000, width=64, dropout=0.0, include_top=True, pooling="avg"):
    """ImageNet-style ResNet-34 (basic blocks 3-4-6-3, 21.8 M parameters at 1000 classes)."""
    return _imagenet_resnet(input_shape, num_classes, (3, 4, 6, 3), False, width, dropout, include_top,
                            pooling, "resnet34")


@register_model(**_IMAGENET)
def resnet50(input_shape, num_classes=1000, width=64, dropout=0.0, include_top=True, pooling="avg"):
    """ImageNet-style ResNet-50 (bottleneck blocks 3-4-6-3, 25.6 M parameters at 1000 classes)."""
    return _imagenet_resnet(input_shape, num_classes, (3, 4, 6, 3), True, width, dropout, include_top,
                            pooling, "resnet50")
