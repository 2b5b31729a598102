"""U-Net (the `unet` family) of Ronneberger et al. 2015 for per-pixel classification.

The encoder halves the resolution `depth` times (two conv-bn-relu layers per level, `filters` x 2^level
filters); the decoder doubles it back with transposed convolutions, concatenating the encoder's map
of the same resolution (the skip connections) before two more conv-bn-relu layers. The head gives
per-pixel class probabilities ``(batch, H, W, num_classes)``.

With ``encoder="resnet18"`` (or any registered `resnet` model) the encoder is that ResNet without its
top, nested as the sub-model ``"encoder"`` (so it can be frozen or given pretrained weights), and its
stage outputs are the skips. Height and width must be multiples of the network's stride: 2^depth for
the plain encoder, the ResNet's own stride (4 or 32) otherwise.
"""

from __future__ import annotations

import keras

from keras_zoo import _validate, registry
from keras_zoo.models import layers
from keras_zoo.registry import Float, Int, register_model


def _double_conv(x, filters, name):
    x = layers.conv_bn_act(x, filters, name=f"{name}_a")
    return layers.conv_bn_act(x, filters, name=f"{name}_b")


def _plain_encoder(inputs, filters, depth):
    """Skips at strides 1 .. 2^(depth-1), bottom at 2^depth; returns ({stride: tensor}, bottom)."""
    skips = {}
    x = inputs
    for level in range(depth):
        x = _double_conv(x, filters * 2 ** level, name=f"enc{level}")
        skips[2 ** level] = x
        x = keras.layers.MaxPooling2D(name=f"enc{level}_pool")(x)
    x = _double_conv(x, filters * 2 ** depth, name="bottom")
    return skips, x


def _resnet_encoder(input_shape, encoder):
    """The ResNet's feature extractor and its output stride (counted from where the maps shrink)."""
    from keras_zoo.models.resnet import resnet_features

    resnets = sorted(s.name for s in registry.builtin_specs() if s.family == "resnet")
    if encoder not in resnets:
        raise ValueError(f"encoder {encoder!r} is not a registered ResNet; accepted: {resnets} or None")
    backbone = registry.build_model(registry.builtin_spec(encoder), input_shape, include_top=False,
                                    pooling=None)
    features = resnet_features(backbone, name="encoder")
    sizes = [input_shape[0], *(int(o.shape[1]) for o in features.outputs)]
    halvings = sum(b < a for a, b in zip(sizes, sizes[1:]))
    return features, 2 ** halvings


def _check_stride(input_shape, stride, why):
    if input_shape[0] % stride or input_shape[1] % stride:
        raise ValueError(
            f"input_shape {tuple(input_shape)} for 'unet': height and width must be multiples of the "
            f"network's stride {stride} ({why}); resize the data or change the encoder/depth")


@register_model(family="unet", task="segmentation", input_shape=(128, 128, 3), num_classes=3,
                recipe="unet", signatures=("segment",), test_input_shape=(16, 16, 3),
                search_space={"filters": Int(8, 64, step=8), "depth": Int(2, 5),
                              "dropout": Float(0.0, 0.5)})
def unet(input_shape, num_classes=3, filters=16, depth=3, dropout=0.0, encoder=None):
    """Encoder-decoder with skip connections; `depth` levels of `filters`·2^level, optional ResNet encoder."""
    filters = _validate.positive_int("filters", filters)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    if encoder is not None and not isinstance(encoder, str):
        raise ValueError(f"encoder must be None or a registered ResNet name, got {encoder!r}")
    input_shape = tuple(input_shape)
    inputs = layers.image_input(input_shape)
    if encoder is None:
        _check_stride(input_shape, 2 ** depth, f"2**depth with depth={depth}")
        skips, x = _plain_encoder(inputs, filters, depth)
    else:
        features, stride = _resnet_encoder(input_shape, encoder)
        _check_stride(input_shape, stride, f"the stride of {encoder}")
        maps = features(inputs)
        # CIFAR-style nets have a stride-1 stage; each stride keeps its (last) map as the skip.
        skips = {input_shape[0] // int(m.shape[1]): m for m in maps[:-1]}
        x = maps[-1]
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottom_dropout")(x)

    level = (input_shape[0] // int(x.shape[1])).bit_length() - 1
    while level > 0:
        level -= 1
        width = filters * 2 ** level
        x = keras.layers.Conv2DTranspose(width, 2, strides=2, padding="same",
                                         kernel_initializer="he_normal", name=f"dec{level}_up")(x)
        skip = skips.get(2 ** level)
        if skip is not None:
            x = keras.layers.Concatenate(name=f"dec{level}_concat")([skip, x])
        x = _double_conv(x, width, name=f"dec{level}")
    outputs = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name="unet")
