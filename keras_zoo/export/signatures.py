"""Serving signatures by name.

A signature factory takes the model and its input shape and returns ``(fn, input_signature)``:
a function from named tensors to a dict of named output tensors. Each task has a primary
signature that is also exported as ``serving_default``; families add their own (``encode``,
``decode``, ``sample`` ...) with `@register_signature`.
"""

from __future__ import annotations

import tensorflow as tf

SIGNATURES: dict = {}

# The signature exported as `serving_default` for each task.
TASK_DEFAULT = {
    "classification": "classify",
    "segmentation": "segment",
    "reconstruction": "reconstruct",
    "generation": "generate",
    "contrastive": "embed",
}


def register_signature(name: str):
    def decorator(factory):
        if name in SIGNATURES:
            raise ValueError(f"signature {name!r} is already registered")
        SIGNATURES[name] = factory
        return factory

    return decorator


def image_spec(input_shape, name: str = "inputs") -> tf.TensorSpec:
    return tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=name)


@register_signature("classify")
def classify(model, input_shape):
    """inputs: float32 (batch, *input_shape) in [0, 1] -> probabilities (batch, K), class_ids (batch,)."""

    def fn(inputs):
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        return {"probabilities": probabilities,
                "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return fn, [image_spec(input_shape)]


# === Reconstruction (autoencoder family) ===


def _sub_model(model, name: str, signature: str):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"signature {signature!r} needs a sub-model named {name!r} in {model.name!r} "
                         "(autoencoders are decoder(encoder(x)))") from None


@register_signature("reconstruct")
def reconstruct(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1] -> reconstruction (batch, H, W, C) in [0, 1]."""

    def fn(inputs):
        return {"reconstruction": tf.cast(model(inputs, training=False), tf.float32)}

    return fn, [image_spec(input_shape)]


@register_signature("encode")
def encode(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1] -> latent (batch, latent_dim): the encoder's code."""
    encoder = _sub_model(model, "encoder", "encode")

    def fn(inputs):
        return {"latent": tf.cast(encoder(inputs, training=False), tf.float32)}

    return fn, [image_spec(input_shape)]


@register_signature("decode")
def decode(model, input_shape):
    """latent: float32 (batch, latent_dim) -> reconstruction (batch, H, W, C) in [0, 1]."""
    decoder = _sub_model(model, "decoder", "decode")
    latent_shape = tuple(decoder.inputs[0].shape[1:])

    def fn(latent):
        return {"reconstruction": tf.cast(decoder(latent, training=False), tf.float32)}

    return fn, [tf.TensorSpec(shape=(None, *latent_shape), dtype=tf.float32, name="latent")]


# === Segmentation (unet family) ===


def spatial_stride(model) -> int:
    """How many times a fully convolutional model shrinks its input: input size / smallest map size.

    Walks nested sub-models too (a U-Net's ResNet encoder). Builders check that their input shape
    is a multiple of this, so the ratio is exact.
    """
    height = model.inputs[0].shape[1]
    smallest = height

    def walk(m):
        nonlocal smallest
        for layer in m.layers:
            if hasattr(layer, "layers"):
                walk(layer)
                continue
            try:
                out = layer.output
            except (AttributeError, ValueError):
                continue
            for t in out if isinstance(out, (list, tuple)) else [out]:
                if len(t.shape) == 4 and t.shape[1]:
                    smallest = min(smallest, t.shape[1])

    walk(model)
    return max(1, height // smallest)


@register_signature("segment")
def segment(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1], H and W any multiples of the model's stride ->
    probabilities (batch, H, W, K) and class_ids (batch, H, W) int32.

    Other sizes fail with an InvalidArgumentError that names the stride.
    """
    stride = spatial_stride(model)
    channels = input_shape[-1]
    spec = tf.TensorSpec(shape=(None, None, None, channels), dtype=tf.float32, name="inputs")
    message = (f"segment: image height and width must be positive multiples of {stride} "
               f"(the stride of {model.name})")

    # A tf.function traced on unknown height and width runs the model at any size; Keras's own
    # input-shape check only sees the unknown dimensions of the trace.
    @tf.function(input_signature=[spec])
    def fn(inputs):
        size = tf.shape(inputs)[1:3]
        with tf.control_dependencies([
                tf.debugging.assert_equal(size % stride, 0, message=message),
                tf.debugging.assert_positive(size, message=message)]):
            probabilities = tf.cast(model(inputs, training=False), tf.float32)
        return {"probabilities": probabilities,
                "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return fn, [spec]
