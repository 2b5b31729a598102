"""Generative adversarial networks (the `gan` family): DCGAN and WGAN-GP.

- `dcgan` (Radford et al. 2016): transposed-conv generator with batch-norm, strided-conv
  discriminator with leaky ReLU, non-saturating logistic losses; one discriminator and one
  generator update per `train_step`, each with its own optimizer.
- `wgan_gp` (Gulrajani et al. 2017): the same generator against a critic without batch-norm (the
  gradient penalty is per example), `critic_steps` critic updates per generator update, and a
  penalty ``gp_weight * (||grad D(x_hat)|| - 1)^2`` on random interpolates x_hat.

The model is called on images and returns the discriminator's (critic's) logits; `generate(noise)`
and the `generate` serving signature produce images in [0, 1]; `model.generator` is a plain
`keras.Model` (noise -> images) that can be saved or exported alone.

Logged values: ``loss`` is the discriminator's (critic's) loss, the quantity whose divergence the
NaN guard watches; ``g_loss`` the generator's. `compile(optimizer=...)` takes the recipe's one
optimizer for the generator and gives the discriminator a fresh optimizer of the same config.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from keras_zoo import _validate
from keras_zoo.models import layers
from keras_zoo.models._custom_step import CustomStepModel, serialize
from keras_zoo.registry import Choice, Float, Int, register_model


class GAN(CustomStepModel):
    """Shared parts of the adversarial models: graph, generator API, two optimizers, config.

    Args:
        generator: `keras.Model` noise ``(batch, latent_dim)`` -> images.
        discriminator: `keras.Model` images -> one logit (score) per image.
        seed: seed of the noise drawn in `train_step`.
    """

    PARTS = ("generator", "discriminator")

    LOGS: tuple = ()  # the names a subclass's steps log, each a running mean over the epoch

    def __init__(self, generator, discriminator, seed=None, **kwargs):
        inputs = keras.Input(shape=tuple(discriminator.inputs[0].shape[1:]), name="inputs")
        super().__init__(inputs, discriminator(inputs), **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_optimizer = None
        # === Metric trackers ===
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOGS}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _log(self, **values):
        for name, value in values.items():
            self.trackers[name].update_state(value)

    @property
    def latent_dim(self) -> int:
        return int(self.generator.inputs[0].shape[-1])

    # === Inference API ===

    def generate(self, noise, training=False):
        """Images in [0, 1] from noise of shape ``(batch, latent_dim)``."""
        return self.generator(noise, training=training)

    def sample(self, num_samples: int, seed=None):
        """`num_samples` images from standard-normal noise (seeded)."""
        return self.generate(keras.random.normal((int(num_samples), self.latent_dim), seed=seed))

    def _noise(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)

    # === Optimizers ===

    def compile(self, optimizer="adam", loss=None, d_optimizer=None, **kwargs):
        """Compile with the generator's optimizer; the discriminator's defaults to a copy of its config.

        Args:
            optimizer: the generator's optimizer (what a recipe passes).
            d_optimizer: the discriminator's; default: a fresh optimizer with `optimizer`'s config
                (same class, learning rate or schedule, betas, clipping).
        """
        optimizer = keras.optimizers.get(optimizer)
        if d_optimizer is None:
            d_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        self.d_optimizer = keras.optimizers.get(d_optimizer)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def _optimized_variables(self):
        return self.generator.trainable_variables

    def _build_optimizers(self) -> None:
        super()._build_optimizers()
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.d_optimizer is not None:
            config["d_optimizer"] = serialize(self.d_optimizer)
        return config

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "generator": serialize(self.generator),
                "discriminator": serialize(self.discriminator), "seed": self.seed}



@keras.saving.register_keras_serializable(package="keras_zoo")
class DCGAN(GAN):
    """DCGAN training: logistic discriminator loss, non-saturating generator loss.

    Logs ``loss`` (discriminator), ``g_loss`` (generator), ``d_real`` and ``d_fake`` (mean
    probability the discriminator gives real and generated images).
    """

    LOGS = ("loss", "g_loss", "d_real", "d_fake")

    @staticmethod
    def _bce(target: float, logits):
        logits = ops.cast(logits, "float32")
        return ops.mean(ops.binary_crossentropy(ops.full(ops.shape(logits), target), logits,
                                                from_logits=True))

    def _adversarial_losses(self, real, training):
        batch = ops.shape(real)[0]
        fake = self.generator(self._noise(batch), training=training)
        real_logits = self.discriminator(real, training=training)
        fake_logits = self.discriminator(fake, training=training)
        d_loss = self._bce(1.0, real_logits) + self._bce(0.0, fake_logits)
        return d_loss, real_logits, fake_logits

    def _record(self, d_loss, g_loss, real_logits, fake_logits):
        self._log(loss=d_loss, g_loss=g_loss,
                  d_real=ops.mean(ops.sigmoid(ops.cast(real_logits, "float32"))),
                  d_fake=ops.mean(ops.sigmoid(ops.cast(fake_logits, "float32"))))

    def train_step(self, data):
        real, _ = self._unpack(data)
        batch = ops.shape(real)[0]
        with tf.GradientTape() as tape:
            d_loss, real_logits, fake_logits = self._adversarial_losses(real, training=True)
        self._minimise(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            fake = self.generator(self._noise(batch), training=True)
            g_loss = self._bce(1.0, self.discriminator(fake, training=True))
        self._minimise(self.optimizer, tape, g_loss, self.generator.trainable_variables)
        self._record(d_loss, g_loss, real_logits, fake_logits)
        return self._results()

    def test_step(self, data):
        real, _ = self._unpack(data)
        d_loss, real_logits, fake_logits = self._adversarial_losses(real, training=False)
        self._record(d_loss, self._bce(1.0, fake_logits), real_logits, fake_logits)
        return self._results()


@keras.saving.register_keras_serializable(package="keras_zoo")
class WGANGP(GAN):
    """WGAN-GP training: `critic_steps` critic updates with gradient penalty per generator update.

    Logs ``loss`` (critic loss including the penalty), ``g_loss``, ``wasserstein`` (the critic's
    estimate E[D(real)] - E[D(fake)]) and ``gradient_penalty``.

    Args:
        critic_steps: critic updates per generator update (5 in the paper).
        gp_weight: weight of the gradient penalty (10 in the paper).
    """

    LOGS = ("loss", "g_loss", "wasserstein", "gradient_penalty")

    def __init__(self, generator, discriminator, critic_steps=5, gp_weight=10.0, seed=None, **kwargs):
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.critic_steps = _validate.positive_int("critic_steps", critic_steps)
        self.gp_weight = _validate.non_negative("gp_weight", gp_weight)

    def gradient_penalty(self, real, fake):
        """Mean of (||grad_x D(x)|| - 1)^2 at random points between real and generated images."""
        batch = ops.shape(real)[0]
        alpha = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        mixed = alpha * real + (1.0 - alpha) * fake
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            scores = self.discriminator(mixed, training=True)
        grads = tape.gradient(scores, mixed)
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def _critic_terms(self, real, training):
        fake = self.generator(self._noise(ops.shape(real)[0]), training=training)
        real_scores = ops.cast(self.discriminator(real, training=training), "float32")
        fake_scores = ops.cast(self.discriminator(fake, training=training), "float32")
        distance = ops.mean(real_scores) - ops.mean(fake_scores)
        return fake, distance, -ops.mean(fake_scores)

    def train_step(self, data):
        real, _ = self._unpack(data)
        real = ops.cast(real, "float32")
        for _ in range(self.critic_steps):
            with tf.GradientTape() as tape:
                fake, distance, _ = self._critic_terms(real, training=True)
                penalty = self.gradient_penalty(real, ops.cast(fake, "float32"))
                c_loss = -distance + self.gp_weight * penalty
            self._minimise(self.d_optimizer, tape, c_loss, self.discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            fake = self.generator(self._noise(ops.shape(real)[0]), training=True)
            g_loss = -ops.mean(ops.cast(self.discriminator(fake, training=True), "float32"))
        self._minimise(self.optimizer, tape, g_loss, self.generator.trainable_variables)
        self._record(c_loss, g_loss, distance, penalty)
        return self._results()

    def test_step(self, data):
        real, _ = self._unpack(data)
        real = ops.cast(real, "float32")
        fake, distance, g_loss = self._critic_terms(real, training=False)
        penalty = self.gradient_penalty(real, ops.cast(fake, "float32"))
        self._record(-distance + self.gp_weight * penalty, g_loss, distance, penalty)
        return self._results()

    def _record(self, c_loss, g_loss, distance, penalty):
        self._log(loss=c_loss, g_loss=g_loss, wasserstein=distance, gradient_penalty=penalty)

    def get_config(self):
        return {**super().get_config(), "critic_steps": self.critic_steps, "gp_weight": self.gp_weight}


# --------------------------------------------------------------------------- builders


def _generator(output_shape, latent_dim, width, depth):
    """noise -> dense -> (h/2^d, w/2^d) grid -> `depth` x [transposed conv, BN, ReLU] -> sigmoid image."""
    h, w, c = output_shape
    factor = 2 ** depth
    top = width * 2 ** (depth - 1)
    z = keras.Input(shape=(latent_dim,), name="noise")
    x = keras.layers.Dense((h // factor) * (w // factor) * top, use_bias=False, name="project")(z)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.Activation("relu", name="project_relu")(x)
    x = keras.layers.Reshape((h // factor, w // factor, top), name="grid")(x)
    for stage in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2 ** stage, 4, strides=2, padding="same",
                                         use_bias=False, name=f"up{stage}")(x)
        x = keras.layers.BatchNormalization(name=f"up{stage}_bn")(x)
        x = keras.layers.Activation("relu", name=f"up{stage}_relu")(x)
    # Sigmoid (not DCGAN's tanh): the package's images live in [0, 1].
    images = keras.layers.Conv2D(c, 3, padding="same", activation="sigmoid", dtype="float32",
                                 name="images")(x)
    return keras.Model(z, images, name="generator")


def _discriminator(input_shape, width, depth, dropout, name):
    """`depth` x [stride-2 conv, leaky ReLU, dropout] -> flatten -> one logit; no batch-norm."""
    inputs = layers.image_input(input_shape)
    x = inputs
    for stage in range(depth):
        x = keras.layers.Conv2D(width * 2 ** stage, 4, strides=2, padding="same", name=f"down{stage}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{stage}_lrelu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"down{stage}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logits = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, logits, name=name)


def _check(input_shape, latent_dim, width, depth, dropout, model):
    latent_dim = _validate.positive_int("latent_dim", latent_dim)
    width = _validate.positive_int("width", width)
    depth = _validate.positive_int("depth", depth)
    dropout = _validate.rate("dropout", dropout)
    layers.check_divisible(input_shape, 2 ** depth, model)
    return latent_dim, width, depth, dropout


_SPACE = {"latent_dim": Int(16, 128, step=16), "width": Int(16, 128, step=16), "depth": Int(1, 3)}


@register_model(family="gan", task="generation", input_shape=(28, 28, 1), recipe="dcgan",
                test_input_shape=(8, 8, 1),
                search_space={**_SPACE, "dropout": Float(0.0, 0.5)})
def dcgan(input_shape, latent_dim=32, width=64, depth=2, dropout=0.2, seed=None):
    """DCGAN: batch-norm transposed-conv generator vs leaky-ReLU conv discriminator, two optimizers."""
    latent_dim, width, depth, dropout = _check(input_shape, latent_dim, width, depth, dropout, "dcgan")
    generator = _generator(tuple(input_shape), latent_dim, width, depth)
    discriminator = _discriminator(input_shape, width, depth, dropout, "discriminator")
    return DCGAN(generator, discriminator, seed=seed, name="dcgan")


@register_model(family="gan", task="generation", input_shape=(28, 28, 1), recipe="wgan_gp",
                test_input_shape=(8, 8, 1),
                search_space={**_SPACE, "critic_steps": Int(1, 5), "gp_weight": Choice((1.0, 5.0, 10.0))})
def wgan_gp(input_shape, latent_dim=32, width=64, depth=2, critic_steps=5, gp_weight=10.0, seed=None):
    """WGAN-GP: the DCGAN generator vs a batch-norm-free critic, gradient penalty, several critic steps."""
    latent_dim, width, depth, _ = _check(input_shape, latent_dim, width, depth, 0.0, "wgan_gp")
    generator = _generator(tuple(input_shape), latent_dim, width, depth)
    critic = _discriminator(input_shape, width, depth, 0.0, "critic")
    return WGANGP(generator, critic, critic_steps=critic_steps, gp_weight=gp_weight, seed=seed,
                  name="wgan_gp")
