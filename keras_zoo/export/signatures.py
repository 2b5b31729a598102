"""Serving signatures by name.

A signature factory takes the model and its input shape and returns ``(fn, input_signature)``:
a function from named tensors to a dict of named output tensors. Each task has a primary
signature that is also exported as ``serving_default``; families add their own (``encode``,
``decode``, ``sample`` ...) with `@register_signature`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

SIGNATURES: dict = {}

# The signature exported as `serving_default` for each task.
TASK_DEFAULT = {
    "classification": "classify",
    "segmentation": "segment",
    "reconstruction": "reconstruct",
    "generation": "generate",
    "contrastive": "embed",
    "pretext": "embed",
    "clustering": "cluster",
    "forecasting": "forecast",
}


def register_signature(name: str):
    """Decorator that registers a serving-signature factory under `name` (once)."""
    def decorator(factory):
        if name in SIGNATURES:
            raise ValueError(f"signature {name!r} is already registered")
        SIGNATURES[name] = factory
        return factory

    return decorator


def image_spec(input_shape, name: str = "inputs") -> tf.TensorSpec:
    """The float32 ``(None, *input_shape)`` spec of a task signature's input."""
    return tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=name)


@register_signature("classify")
def classify(model, input_shape):
    """inputs: float32 (batch, *input_shape) in [0, 1] -> probabilities (batch, K), class_ids (batch,)."""

    def fn(inputs):
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        return {"probabilities": probabilities,
                "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return fn, [image_spec(input_shape)]


# === Raw uint8 images (the serving contract: `serving_default` of every image model) ===


def uint8_images(float_factory):
    """The uint8 twin of an image signature: ``inputs`` uint8 pixels 0-255 of the same shape, scaled
    to [0, 1] inside the graph and passed to the float signature, whose outputs it returns.

    A client sends decoded images as they are; the scaling the model was trained with travels in the
    export (see `keras_zoo.export.contract`).
    """

    def factory(model, input_shape):
        fn, specs = float_factory(model, input_shape)
        image = specs[0]

        def wrapped(inputs):
            return fn(tf.cast(inputs, tf.float32) / 255.0)

        return wrapped, [tf.TensorSpec(shape=image.shape, dtype=tf.uint8, name=image.name)]

    factory.__doc__ = (f"{float_factory.__name__} on raw uint8 images (batch, ...) with pixel values "
                       "0-255, scaled to [0, 1] inside the graph.")
    return factory


# === Reconstruction (autoencoder family) ===


def _sub_model(model, name: str, signature: str):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"signature {signature!r} needs a sub-model named {name!r} in {model.name!r} "
                         "(autoencoders are decoder(encoder(x)))") from None


def _reconstruct_autoencoder(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1] -> reconstruction (batch, H, W, C) in [0, 1]."""

    def fn(inputs):
        return {"reconstruction": tf.cast(model(inputs, training=False), tf.float32)}

    return fn, [image_spec(input_shape)]


def _encode_autoencoder(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1] -> latent (batch, latent_dim): the encoder's code."""
    encoder = _sub_model(model, "encoder", "encode")

    def fn(inputs):
        return {"latent": tf.cast(encoder(inputs, training=False), tf.float32)}

    return fn, [image_spec(input_shape)]


def _decode_autoencoder(model, input_shape):
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


def free_size(model) -> bool:
    """Whether a per-pixel model takes any height and width (a U-Net): it has no layer that fixes
    its size (resizing to a fixed size, flattening, dense layers over the map)."""
    fixing = (keras.layers.Resizing, keras.layers.Flatten, keras.layers.Reshape)

    def walk(m):
        for layer in m.layers:
            if hasattr(layer, "layers"):
                yield from walk(layer)
            else:
                yield layer

    return len(model.inputs[0].shape) == 4 and not any(isinstance(l, fixing) for l in walk(model))


@register_signature("segment")
def segment(model, input_shape):
    """inputs: float32 (batch, H, W, C) in [0, 1], H and W any multiples of the model's stride ->
    probabilities (batch, H, W, K) and class_ids (batch, H, W) int32.

    Other sizes fail with an InvalidArgumentError that names the stride.
    """
    if not free_size(model):
        # A model that resizes inside (a fine-tuned U-Net) answers at its own size only.
        def fixed(inputs):
            probabilities = tf.cast(model(inputs, training=False), tf.float32)
            return {"probabilities": probabilities,
                    "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

        return fixed, [image_spec(input_shape)]
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


# --------------------------------------------------------------------------- generative / contrastive


def _latent_dim(model, input_shape) -> int:
    """Noise size of a generative model (VAE, GAN), or of a bare generator whose input is the noise."""
    if hasattr(model, "latent_dim"):
        return int(model.latent_dim)
    if len(input_shape) != 1:
        raise ValueError(
            f"model {model.name!r} has no `latent_dim` and its input {tuple(input_shape)} is not a "
            "noise vector; the generation signatures need a VAE, a GAN or a generator (noise -> images)")
    return int(input_shape[0])


def _images(model, noise):
    generate = getattr(model, "generate", None)
    images = generate(noise) if generate is not None else model(noise, training=False)
    return tf.cast(images, tf.float32)


@register_signature("generate")
def generate(model, input_shape):
    """inputs: float32 noise (batch, latent_dim), standard normal -> images (batch, h, w, c) in [0, 1].

    Works for a VAE (decodes prior samples), a GAN, and a GAN's bare `generator` model.
    """
    latent = _latent_dim(model, input_shape)

    def fn(inputs):
        return {"images": _images(model, inputs)}

    return fn, [tf.TensorSpec(shape=(None, latent), dtype=tf.float32, name="inputs")]


@register_signature("sample")
def sample(model, input_shape):
    """inputs: int32 number of samples, seed: int32 -> images and the standard-normal latents used.

    The noise is drawn with a stateless generator, so the same (inputs, seed) gives the same images.
    """
    latent = _latent_dim(model, input_shape)

    def fn(inputs, seed):
        z = tf.random.stateless_normal(tf.stack([tf.maximum(inputs, 0), latent]),
                                       seed=tf.stack([seed, tf.constant(0, tf.int32)]))
        return {"images": _images(model, z), "latents": z}

    return fn, [tf.TensorSpec(shape=(), dtype=tf.int32, name="inputs"),
                tf.TensorSpec(shape=(), dtype=tf.int32, name="seed")]


def _encode_vae(model, input_shape):
    """inputs: images -> mean and log_variance of the VAE posterior q(z|x), each (batch, latent_dim)."""
    if not hasattr(model, "encode"):
        raise ValueError(f"model {model.name!r} has no `encode` method (the `encode` signature is a VAE's)")

    def fn(inputs):
        mean, log_var = model.encode(inputs)
        return {"mean": tf.cast(mean, tf.float32), "log_variance": tf.cast(log_var, tf.float32)}

    return fn, [image_spec(input_shape)]


def _decode_vae(model, input_shape):
    """inputs: latent codes z (batch, latent_dim) -> images, the expected image under p(x|z)."""
    if not hasattr(model, "decode"):
        raise ValueError(f"model {model.name!r} has no `decode` method (the `decode` signature is a VAE's)")
    latent = _latent_dim(model, input_shape)

    def fn(inputs):
        return {"images": tf.cast(model.decode(inputs), tf.float32)}

    return fn, [tf.TensorSpec(shape=(None, latent), dtype=tf.float32, name="inputs")]


def _reconstruct_vae(model, input_shape):
    """inputs: images -> reconstruction (same shape, [0, 1]).

    Uses the model's `reconstruct` method where it has one (a VAE decodes its posterior mean),
    otherwise the model's own output (an autoencoder).
    """
    method = getattr(model, "reconstruct", None)

    def fn(inputs):
        out = method(inputs) if method is not None else model(inputs, training=False)
        return {"reconstruction": tf.cast(out, tf.float32)}

    return fn, [image_spec(input_shape)]


@register_signature("embed")
def embed(model, input_shape):
    """inputs: images -> embedding (batch, d), L2-normalised representation (SimCLR's encoder features)."""
    method = getattr(model, "embed", None)

    def fn(inputs):
        if method is not None:
            out = method(inputs)
        else:
            out = tf.math.l2_normalize(tf.cast(model(inputs, training=False), tf.float32), axis=-1)
        return {"embedding": tf.cast(out, tf.float32)}

    return fn, [image_spec(input_shape)]


# === Signatures shared by autoencoders and VAEs ===
# One name, two contracts: an autoencoder exposes `encoder`/`decoder` sub-models and a deterministic
# code; a VAE exposes `encode`/`decode` methods and a posterior (mean, log-variance). The model's kind
# picks the implementation, so `encode` means "the model's own encoder" for either.


def _is_vae(model) -> bool:
    return callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))


@register_signature("encode")
def encode(model, input_shape):
    """Autoencoder: inputs -> latent. VAE: inputs -> mean, log_variance of q(z|x)."""
    return (_encode_vae if _is_vae(model) else _encode_autoencoder)(model, input_shape)


@register_signature("decode")
def decode(model, input_shape):
    """Autoencoder: latent -> reconstruction. VAE: inputs (latent codes z) -> images."""
    return (_decode_vae if _is_vae(model) else _decode_autoencoder)(model, input_shape)


@register_signature("reconstruct")
def reconstruct(model, input_shape):
    """inputs -> reconstruction in [0, 1] (a VAE decodes its posterior mean)."""
    return (_reconstruct_vae if _is_vae(model) else _reconstruct_autoencoder)(model, input_shape)


# === Clustering (iic family) and future prediction (forecaster family) ===


@register_signature("cluster")
def cluster(model, input_shape):
    """inputs: images -> probabilities (batch, K) over the learned clusters and cluster_ids (batch,) int32."""
    classify_fn, input_signature = classify(model, input_shape)

    def fn(inputs):
        out = classify_fn(inputs)
        return {"probabilities": out["probabilities"], "cluster_ids": out["class_ids"]}

    return fn, input_signature


@register_signature("forecast")
def forecast(model, input_shape):
    """inputs: a sequence (batch, T, F), or images (batch, H, W, C) read as H rows of W*C values ->
    next_step (batch, F): the prediction of the step after the last, predictions (batch, T, F): the
    prediction of step t+1 made after reading steps 0..t, and state (batch, units): the recurrent
    state after the whole sequence (the representation)."""
    if not callable(getattr(model, "forecast_outputs", None)):
        raise ValueError(f"model {model.name!r} has no `forecast_outputs` method (the `forecast` "
                         "signature is a recurrent forecaster's)")

    def fn(inputs):
        out = model.forecast_outputs(inputs)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    return fn, [image_spec(input_shape)]


# The uint8 twins, exported as `serving_default` (keras_zoo.export.contract.TASK_SERVING).
for _name in ("classify", "segment", "reconstruct", "embed", "cluster", "forecast"):
    register_signature(f"{_name}_uint8")(uint8_images(SIGNATURES[_name]))
del _name
