"""Convolutional autoencoders (the `autoencoder` family): plain, denoising and masked (imputation).

Each model is ``decoder(encoder(x))`` with two named sub-models, so the encoder comes out whole as a
feature extractor (``model.get_layer("encoder")``) and the export has ``encode``/``decode``
signatures. The encoder halves the resolution `depth` times with strided conv-bn-relu stages and
ends in a dense bottleneck of `latent_dim` units (the course's f); the decoder mirrors it with
transposed convolutions (g) and a sigmoid output in [0, 1]. Training minimises E||g(f(x)) - x||².

The three variants share the architecture and differ in their recipe: the denoising and masked
autoencoders see inputs corrupted in the data pipeline (``Recipe.corruption``) and are trained to
return the clean image.
"""

from __future__ import annotations

import keras

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.registry import Float, Int, register_model


def _encoder(input_shape, filters, depth, latent_dim, dropout):
    inputs = layers.image_input(input_shape, name="inputs")
    x = inputs
    for stage in range(depth):
        width = filters * 2 ** stage
        x = layers.conv_bn_act(x, width, name=f"enc{stage}_a")
        x = layers.conv_bn_act(x, width, strides=2, name=f"enc{stage}_down")
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    latent = keras.layers.Dense(latent_dim, name="latent")(x)
    return keras.Model(inputs, latent, name="encoder")


def _decoder(input_shape, filters, depth, latent_dim):
    h, w, channels = input_shape
    factor = 2 ** depth
    bottom = (h // factor, w // factor, filters * 2 ** (depth - 1))
    latent = keras.Input(shape=(latent_dim,), name="latent")
    x = keras.layers.Dense(bottom[0] * bottom[1] * bottom[2], name="expand")(latent)
    x = keras.layers.Activation("relu", name="expand_relu")(x)
    x = keras.layers.Reshape(bottom, name="unflatten")(x)
    for stage in reversed(range(depth)):
        width = filters * 2 ** stage
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", use_bias=False,
                                         kernel_initializer="he_normal", name=f"dec{stage}_up")(x)
        x = keras.layers.BatchNormalization(name=f"dec{stage}_up_bn")(x)
        x = keras.layers.Activation("relu", name=f"dec{stage}_up_relu")(x)
        x = layers.conv_bn_act(x, width, name=f"dec{stage}_b")
    # The output runs in float32 so mixed precision still yields well-formed pixel values.
    outputs = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32",
                                  name="reconstruction")(x)
    return keras.Model(latent, outputs, name="decoder")


def _create_autoencoder(input_shape, filters, depth, latent_dim, dropout, name):
    filters = _validate.positive_int("filters", filters)
    depth = _validate.positive_int("depth", depth)
    latent_dim = _validate.positive_int("latent_dim", latent_dim)
    dropout = _validate.rate("dropout", dropout)
    factor = 2 ** depth
    layers.check_downsampling(input_shape, factor, name)
    if input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(
            f"input_shape {tuple(input_shape)} for {name!r}: height and width must be multiples of "
            f"2**depth = {factor} so the decoder restores the exact size (lower `depth` or resize)")

    encoder = _encoder(input_shape, filters, depth, latent_dim, dropout)
    decoder = _decoder(input_shape, filters, depth, latent_dim)
    inputs = layers.image_input(input_shape)
    outputs = decoder(encoder(inputs))
    return keras.Model(inputs, outputs, name=name)


_COMMON = dict(family="autoencoder", task="reconstruction", input_shape=(28, 28, 1),
               signatures=("encode", "decode"), test_input_shape=(8, 8, 1),
               search_space={"filters": Int(8, 64, step=8), "depth": Int(1, 3),
                             "latent_dim": Int(4, 128, step=4), "dropout": Float(0.0, 0.5)})


@register_model(recipe="autoencoder", **_COMMON)
def conv_autoencoder(input_shape, filters=32, depth=2, latent_dim=32, dropout=0.0):
    """Conv encoder -> dense bottleneck of `latent_dim` -> transposed-conv decoder, trained to copy x."""
    return _create_autoencoder(input_shape, filters, depth, latent_dim, dropout, "conv_autoencoder")


@register_model(recipe="denoising_autoencoder", **_COMMON)
def denoising_autoencoder(input_shape, filters=32, depth=2, latent_dim=32, dropout=0.0):
    """The conv autoencoder trained on noisy inputs (Gaussian noise in the pipeline) to return clean ones."""
    return _create_autoencoder(input_shape, filters, depth, latent_dim, dropout, "denoising_autoencoder")


@register_model(recipe="masked_autoencoder", **_COMMON)
def masked_autoencoder(input_shape, filters=32, depth=2, latent_dim=64, dropout=0.0):
    """The conv autoencoder trained to fill in patches hidden in the pipeline (imputation)."""
    return _create_autoencoder(input_shape, filters, depth, latent_dim, dropout, "masked_autoencoder")
