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


@register_signature("classify_uint8")
def classify_uint8(model, input_shape):
    """inputs: uint8 (batch, *input_shape), raw pixels 0-255 -> probabilities (batch, K), class_ids.

    The scaling to [0, 1] the model was trained with runs inside the graph, so a client sends decoded
    images as they are (the serving signature of fine-tuned models).
    """
    classify_fn, _ = classify(model, input_shape)

    def fn(inputs):
        return classify_fn(tf.cast(inputs, tf.float32) / 255.0)

    return fn, [tf.TensorSpec(shape=(None, *input_shape), dtype=tf.uint8, name="inputs")]


@register_signature("segment_uint8")
def segment_uint8(model, input_shape):
    """inputs: uint8 (batch, H, W, C), raw pixels 0-255 -> per-pixel probabilities (batch, H, W, K), class_ids.

    The serving signature of fine-tuned segmentation models: scaling to [0, 1] runs inside the graph.
    """

    def fn(inputs):
        probabilities = tf.cast(model(tf.cast(inputs, tf.float32) / 255.0, training=False), tf.float32)
        return {"probabilities": probabilities,
                "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return fn, [tf.TensorSpec(shape=(None, *input_shape), dtype=tf.uint8, name="inputs")]
