"""Variational autoencoders (the `vae` family): a convolutional VAE / beta-VAE (Kingma & Welling 2014).

The encoder maps an image to the mean and log-variance of a diagonal Gaussian q(z|x); a sample
z = mean + exp(log_var / 2) * eps is decoded into the parameters of p(x|z), an independent
distribution per pixel. Three pixel likelihoods:

- ``"bernoulli"``: the usual choice for [0, 1] images; with fractional intensities it is a
  cross-entropy rather than a normalised likelihood, so its "nats" are not comparable to others.
- ``"categorical"``: pixels quantised to `levels` equally spaced values in [0, 1] (17 for the
  8x8 `digits`, whose values are k/16; 256 for 8-bit images), one softmax per pixel.
- ``"logistic"``: the same `levels` values under a mixture of `components` discretised logistics
  per pixel (PixelCNN++), which shares probability between neighbouring levels and so needs
  far fewer parameters and examples than the categorical.

The last two are proper distributions over the quantised images, so on discrete data the
negative ELBO is an upper bound on -log p(x) in nats.

The training loss is ``reconstruction_nll + beta * KL`` per example (beta = 1 is the ELBO).
"""

from __future__ import annotations

import numpy as np

import keras
import tensorflow as tf
from keras import ops

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.models._custom_step import CustomStepModel, serialize
from keras_zoo.registry import Float, Int, register_model

LIKELIHOODS = ("bernoulli", "categorical", "logistic")


# --------------------------------------------------------------------------- pixel likelihoods


def _quantise(x, levels: int):
    """Intensities in [0, 1] -> integer level indices 0..levels-1."""
    return ops.cast(ops.round(ops.clip(x, 0.0, 1.0) * (levels - 1)), "int32")


def _split_logistic(params):
    """Decoder output (..., 3M) -> mixture logits, means, log-scales, each (..., M)."""
    m = params.shape[-1] // 3
    log_scales = ops.maximum(params[..., 2 * m:], -7.0)  # floor: a scale of 1e-3 is already a spike
    return params[..., :m], params[..., m:2 * m], log_scales


def _logistic_log_prob(target, params, levels: int):
    """log P(x) per pixel under a mixture of discretised logistics on `levels` values in [0, 1].

    As PixelCNN++ (Salimans et al. 2017): a level's probability is the logistic CDF mass of its
    bin; the lowest and highest levels take all the mass below and above, so pixels that are
    exactly black or white are cheap to predict.
    """
    mix_logits, means, log_scales = _split_logistic(params)
    half_bin = 0.5 / (levels - 1)
    x = ops.expand_dims(ops.cast(_quantise(target, levels), "float32") / (levels - 1), -1)
    centred = x - means
    inv_scale = ops.exp(-log_scales)
    plus = inv_scale * (centred + half_bin)
    minus = inv_scale * (centred - half_bin)
    log_cdf_plus = plus - ops.softplus(plus)  # log sigmoid(plus)
    log_survival_minus = -ops.softplus(minus)  # log (1 - sigmoid(minus))
    mass = ops.sigmoid(plus) - ops.sigmoid(minus)
    # Where a bin's mass underflows, use density x bin width (the limit of a tiny bin).
    mid = inv_scale * centred
    log_density = mid - log_scales - 2.0 * ops.softplus(mid) + np.log(2 * half_bin)
    interior = ops.where(mass > 1e-5, ops.log(ops.maximum(mass, 1e-12)), log_density)
    log_prob = ops.where(x < half_bin, log_cdf_plus,
                         ops.where(x > 1.0 - half_bin, log_survival_minus, interior))
    return ops.logsumexp(log_prob + ops.log_softmax(mix_logits, axis=-1), axis=-1)


def pixel_nll(target, logits, likelihood: str, levels: int):
    """Negative log-likelihood of each example (nats, summed over pixels and channels).

    Args:
        target: images in [0, 1], shape ``(batch, h, w, c)``.
        logits: decoder output: ``(batch, h, w, c)`` for Bernoulli, ``(batch, h, w, c, levels)``
            for categorical, ``(batch, h, w, c, 3 * components)`` for the logistic mixture.
    """
    logits = ops.cast(logits, "float32")
    target = ops.cast(target, "float32")
    if likelihood == "bernoulli":
        per_pixel = ops.binary_crossentropy(target, logits, from_logits=True)
    elif likelihood == "categorical":
        per_pixel = ops.sparse_categorical_crossentropy(_quantise(target, levels), logits,
                                                        from_logits=True)
    else:
        per_pixel = -_logistic_log_prob(target, logits, levels)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def pixel_mean(logits, likelihood: str, levels: int):
    """Expected image under p(x|z): per-pixel mean intensity in [0, 1]."""
    logits = ops.cast(logits, "float32")
    if likelihood == "bernoulli":
        return ops.sigmoid(logits)
    if likelihood == "categorical":
        values = np.linspace(0.0, 1.0, levels, dtype="float32")
        return ops.sum(ops.softmax(logits, axis=-1) * values, axis=-1)
    # E[x] over levels v_0..v_{K-1} = 1 - (1 / (K - 1)) * sum_j CDF(boundary_j), boundaries between
    # neighbouring levels; averaged over the mixture components.
    mix_logits, means, log_scales = _split_logistic(logits)
    boundaries = (np.arange(levels - 1, dtype="float32") + 0.5) / (levels - 1)
    cdf = ops.sigmoid(ops.subtract(boundaries, ops.expand_dims(means, -1))
                      * ops.exp(-ops.expand_dims(log_scales, -1)))
    component_means = 1.0 - ops.mean(cdf, axis=-1)
    return ops.sum(ops.softmax(mix_logits, axis=-1) * component_means, axis=-1)


def gaussian_kl(mean, log_var):
    """KL(q(z|x) || N(0, I)) per example, in nats."""
    mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


# --------------------------------------------------------------------------- the model


@keras.saving.register_keras_serializable(package="keras_zoo")
class VariationalAutoencoder(CustomStepModel):
    """A VAE whose `train_step` minimises ``reconstruction_nll + beta * KL``.

    Calling it on images returns ``{"mean", "log_variance", "reconstruction"}`` (the reconstruction
    decodes the posterior mean, so inference is deterministic).

    Args:
        encoder: `keras.Model` image -> ``[mean, log_variance]``, each ``(batch, latent_dim)``.
        decoder: `keras.Model` z -> logits of p(x|z) (see `pixel_nll`).
        beta: weight of the KL term (beta-VAE; 1 trains on the ELBO).
        likelihood: ``"bernoulli"``, ``"categorical"`` or ``"logistic"`` (see the module notes).
        levels: number of intensity levels of the categorical and logistic likelihoods.
        seed: seed of the reparameterisation noise.

    Example:
        >>> vae = keras_zoo.create_model("vae", input_shape=(8, 8, 1), likelihood="categorical", levels=17)
        >>> vae.compile(optimizer="adam"); vae.fit(images, epochs=10)
        >>> mean, log_var = vae.encode(images); samples = vae.sample(16, seed=0)
    """

    PARTS = ("encoder", "decoder")

    def __init__(self, encoder, decoder, beta=1.0, likelihood="bernoulli", levels=256, seed=None,
                 **kwargs):
        beta = _validate.non_negative("beta", beta)
        likelihood = _validate.one_of("likelihood", likelihood, LIKELIHOODS)
        levels = _validate.positive_int("levels", levels, minimum=2)
        # === Graph (makes this a Functional model: inputs, call, summary, export) ===
        inputs = keras.Input(shape=tuple(encoder.inputs[0].shape[1:]), name="inputs")
        mean, log_var = encoder(inputs)
        reconstruction = pixel_mean(decoder(mean), likelihood, levels)
        super().__init__(inputs, {"mean": mean, "log_variance": log_var,
                                  "reconstruction": reconstruction}, **kwargs)
        # === Sub-models and config ===
        self.encoder = encoder
        self.decoder = decoder
        self.beta = beta
        self.likelihood = likelihood
        self.levels = levels
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Metric trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    # === Inference API ===

    def encode(self, images, training=False):
        """(mean, log_variance) of q(z|x)."""
        mean, log_var = self.encoder(images, training=training)
        return mean, log_var

    def decode(self, z, training=False):
        """Expected image under p(x|z), in [0, 1]."""
        return pixel_mean(self.decoder(z, training=training), self.likelihood, self.levels)

    def generate(self, noise, training=False):
        """Images from prior samples z ~ N(0, I) (the `generate` serving signature)."""
        return self.decode(noise, training=training)

    def reconstruct(self, images, training=False):
        """Decode the posterior mean of each image."""
        mean, _ = self.encode(images, training=training)
        return self.decode(mean, training=training)

    def sample(self, num_samples: int, seed=None):
        """`num_samples` images decoded from prior draws (seeded)."""
        z = keras.random.normal((int(num_samples), self.latent_dim), seed=seed)
        return self.decode(z)

    def loss_terms(self, images, targets=None, training=False, seed=None):
        """Per-example (reconstruction NLL, KL) in nats, one posterior sample per example.

        Args:
            images: encoder inputs.
            targets: images to reconstruct (default: `images`; a denoising VAE passes clean ones).
            seed: seed of the posterior sample; default the model's seed generator.
        """
        targets = images if targets is None else targets
        mean, log_var = self.encoder(images, training=training)
        return self.posterior_terms(targets, mean, log_var, training=training, seed=seed)

    def posterior_terms(self, targets, mean, log_var, training=False, seed=None):
        """Per-example (reconstruction NLL, KL) for a given Gaussian posterior q = N(mean, exp(log_var)).

        `loss_terms` passes the encoder's posterior; an evaluation may pass a refined one.
        """
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator if seed is None else seed)
        z = mean + ops.exp(0.5 * log_var) * eps
        logits = self.decoder(z, training=training)
        return pixel_nll(targets, logits, self.likelihood, self.levels), gaussian_kl(mean, log_var)

    # === Training ===

    def _update(self, nll, kl):
        loss = ops.mean(nll + self.beta * kl)
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(ops.mean(nll))
        self.kl_tracker.update_state(ops.mean(kl))
        return loss

    def train_step(self, data):
        x, y = self._unpack(data)
        with tf.GradientTape() as tape:
            nll, kl = self.loss_terms(x, y, training=True)
            # Weight penalties of the sub-models, if any were configured, join the objective.
            objective = ops.mean(nll + self.beta * kl) + sum(self.losses, 0.0)
        self._minimise(self.optimizer, tape, objective, self.trainable_variables)
        self._update(nll, kl)
        return self._results()

    def test_step(self, data):
        x, y = self._unpack(data)
        nll, kl = self.loss_terms(x, y, training=False)
        self._update(nll, kl)
        return self._results()

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": serialize(self.encoder), "decoder": serialize(self.decoder),
                "beta": self.beta, "likelihood": self.likelihood, "levels": self.levels,
                "seed": self.seed}



# --------------------------------------------------------------------------- builders


def _dropout(x, rate, name):
    return keras.layers.Dropout(rate, name=name)(x) if rate else x


def _conv_encoder(input_shape, latent_dim, width, depth, dropout):
    inputs = layers.image_input(input_shape)
    x = inputs
    for stage in range(depth):
        x = keras.layers.Conv2D(width * 2 ** stage, 3, strides=2, padding="same", activation="relu",
                                name=f"down{stage}")(x)
        x = _dropout(x, dropout, f"down{stage}_dropout")
    x = keras.layers.Flatten(name="flatten")(x)
    mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    log_var = keras.layers.Dense(latent_dim, name="z_log_variance")(x)
    return keras.Model(inputs, [mean, log_var], name="encoder")


def _conv_decoder(output_shape, latent_dim, width, depth, dropout, channels_per_pixel, name="decoder"):
    """z -> dense -> (h/2^d, w/2^d) grid -> `depth` stride-2 transposed convs -> per-pixel logits."""
    h, w, c = output_shape
    factor = 2 ** depth
    top = width * 2 ** (depth - 1)
    z = keras.Input(shape=(latent_dim,), name="latent")
    x = keras.layers.Dense((h // factor) * (w // factor) * top, activation="relu", name="project")(z)
    x = keras.layers.Reshape((h // factor, w // factor, top), name="grid")(x)
    x = _dropout(x, dropout, "grid_dropout")
    for stage in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2 ** stage, 4, strides=2, padding="same",
                                         activation="relu", name=f"up{stage}")(x)
        x = _dropout(x, dropout, f"up{stage}_dropout")
    x = keras.layers.Conv2D(c * channels_per_pixel, 3, padding="same", name="logits")(x)
    if channels_per_pixel > 1:
        x = keras.layers.Reshape((h, w, c, channels_per_pixel), name="pixel_logits")(x)
    return keras.Model(z, x, name=name)


@register_model(family="vae", task="generation", input_shape=(28, 28, 1), recipe="vae",
                signatures=("encode", "decode", "sample", "reconstruct"), test_input_shape=(8, 8, 1),
                search_space={"latent_dim": Int(2, 64, step=2), "width": Int(16, 128, step=16),
                              "depth": Int(1, 3), "dropout": Float(0.0, 0.5),
                              "beta": Float(0.25, 4.0, sampling="log")})
def vae(input_shape, latent_dim=32, width=64, depth=2, dropout=0.05, beta=1.0, likelihood="logistic",
        levels=256, components=3, seed=None):
    """Convolutional VAE / beta-VAE: stride-2 conv encoder, transposed-conv decoder, Gaussian latent.

    The default pixel likelihood is a mixture of three discretised logistics over `levels` values;
    `keras_zoo.train` sets `levels` from the data (17 for `digits`, 256 for 8-bit images).
    """
    latent_dim = _validate.positive_int("latent_dim", latent_dim)
    width = _validate.positive_int("width", width)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    _validate.one_of("likelihood", likelihood, LIKELIHOODS)
    levels = _validate.positive_int("levels", levels, minimum=2)
    layers.check_divisible(input_shape, 2 ** depth, "vae")
    components = _validate.positive_int("components", components)
    per_pixel = {"bernoulli": 1, "categorical": levels, "logistic": 3 * components}[likelihood]
    encoder = _conv_encoder(input_shape, latent_dim, width, depth, dropout)
    decoder = _conv_decoder(tuple(input_shape), latent_dim, width, depth, dropout, per_pixel)
    return VariationalAutoencoder(encoder, decoder, beta=beta, likelihood=likelihood, levels=levels,
                                  seed=seed, name="vae")
