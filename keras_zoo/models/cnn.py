"""Convolutional classifiers (the `cnn` family): the lecture's one-layer convnet and small VGG-style nets."""

from __future__ import annotations

import keras

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.registry import Choice, Float, Int, register_model


@register_model(family="cnn", task="classification", input_shape=(28, 28, 1), num_classes=10,
                recipe="classifier", test_input_shape=(12, 12, 1),
                search_space={"filters": Int(8, 128, step=8), "kernel_size": Choice((3, 5, 7)),
                              "temperature": Float(0.5, 2.0)})
def cnn_lecture(input_shape, num_classes=10, filters=16, kernel_size=3, temperature=1.0):
    """The lecture's net: conv(C, k) -> relu -> global average pool -> dense(K) -> softmax(z / tau)."""
    filters = _validate.positive_int("filters", filters)
    kernel_size = _validate.positive_int("kernel_size", kernel_size)
    temperature = _validate.positive("temperature", temperature)

    inputs = layers.image_input(input_shape)
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", name="conv")(inputs)
    x = keras.layers.Activation("relu", name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.classification_head(x, num_classes, temperature=temperature)
    return keras.Model(inputs, outputs, name="cnn_lecture")


def _create_convnet(input_shape, num_classes, width, depth, dropout, l2, name):
    """`depth` stages of two conv-bn-relu layers, doubling width and halving resolution each stage."""
    width = _validate.positive_int("width", width)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    layers.check_downsampling(input_shape, 2 ** depth, name)
    penalty = layers.weight_penalty(0.0, l2)

    inputs = layers.image_input(input_shape)
    x = inputs
    for stage in range(depth):
        filters = width * 2 ** stage
        x = layers.conv_bn_act(x, filters, regularizer=penalty, name=f"stage{stage}_a")
        x = layers.conv_bn_act(x, filters, regularizer=penalty, name=f"stage{stage}_b")
        x = keras.layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.classification_head(x, num_classes, dropout=dropout, regularizer=penalty)
    return keras.Model(inputs, outputs, name=name)


_CONVNET_SPACE = {
    "width": Int(8, 64, step=8),
    "depth": Int(1, 3),
    "dropout": Float(0.0, 0.5),
    "l2": Choice((0.0, 1e-5, 1e-4, 1e-3)),
}


@register_model(family="cnn", task="classification", input_shape=(28, 28, 1), num_classes=10,
                recipe="classifier", test_input_shape=(8, 8, 1), search_space=_CONVNET_SPACE)
def cnn_small(input_shape, num_classes=10, width=32, depth=2, dropout=0.25, l2=0.0):
    """Two conv-bn-relu stages with max-pooling (the shipped checkpoints' architecture); for speed
    on small images `cnn_fast` is the recommended default."""
    return _create_convnet(input_shape, num_classes, width, depth, dropout, l2, "cnn_small")


@register_model(family="cnn", task="classification", input_shape=(32, 32, 3), num_classes=10,
                recipe="classifier", test_input_shape=(16, 16, 3), search_space=_CONVNET_SPACE)
def cnn_medium(input_shape, num_classes=10, width=48, depth=3, dropout=0.3, l2=1e-5):
    """Three conv-bn-relu stages (48-96-192 filters) for 32x32 colour images."""
    return _create_convnet(input_shape, num_classes, width, depth, dropout, l2, "cnn_medium")


def _create_fast_convnet(input_shape, num_classes, width, depth, dropout, name):
    """`depth` stages of conv -> max-pool -> batch-norm -> relu, doubling the width each stage.

    Pooling straight after each convolution runs batch-norm and relu at a quarter of the pixels
    (max-pooling commutes with relu, and with batch-norm's per-channel affine map wherever its
    scale is positive); only the first, narrow convolution sees the full resolution. The pooled
    feature map is flattened, not globally averaged: where a digit's strokes lie is the signal.
    """
    width = _validate.positive_int("width", width)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    layers.check_downsampling(input_shape, 2 ** depth, name)

    inputs = layers.image_input(input_shape)
    x = inputs
    for stage in range(depth):
        x = keras.layers.Conv2D(width * 2 ** stage, 3, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"stage{stage}_conv")(x)
        x = keras.layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
        # momentum 0.9, as in layers.conv_bn_act: an epoch of a small set is a few dozen steps.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn")(x)
        x = keras.layers.Activation("relu", name=f"stage{stage}_act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = layers.classification_head(x, num_classes, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


@register_model(family="cnn", task="classification", input_shape=(28, 28, 1), num_classes=10,
                recipe="fast_classifier", test_input_shape=(8, 8, 1),
                search_space={"width": Int(8, 64, step=8), "depth": Int(1, 3), "dropout": Float(0.0, 0.5)})
def cnn_fast(input_shape, num_classes=10, width=16, depth=3, dropout=0.25):
    """Three conv-pool-bn-relu stages (16-32-64 filters), 3.9 MFLOP per 28x28 image: the recommended
    default for small images, trained by the `fast_classifier` recipe to accuracy in few epochs."""
    return _create_fast_convnet(input_shape, num_classes, width, depth, dropout, "cnn_fast")


@register_model(family="cnn", task="classification", input_shape=(32, 32, 3), num_classes=10,
                recipe="photo_classifier", test_input_shape=(8, 8, 3),
                search_space={"width": Int(16, 64, step=8), "depth": Int(2, 3), "dropout": Float(0.0, 0.5)})
def cnn_color(input_shape, num_classes=10, width=32, depth=3, dropout=0.25):
    """`cnn_fast` at twice the width (32-64-128 filters): the recommended default for small colour photos.

    About 20 MFLOP per 32x32 RGB image, trained by the `photo_classifier` recipe with random crops and
    horizontal flips (see docs/colour-photos.md).
    """
    return _create_fast_convnet(input_shape, num_classes, width, depth, dropout, "cnn_color")
