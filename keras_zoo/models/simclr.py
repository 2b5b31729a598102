"""Contrastive pre-training (the `simclr` family): SimCLR (Chen et al. 2020).

Each batch is augmented twice with Keras preprocessing layers (random resized crop as zoom-in plus
translation, optional horizontal flip, colour jitter and random grayscale for RGB inputs or
brightness/contrast jitter for one channel, Gaussian blur); both views go through an encoder taken
from the registry (any classifier with a globally pooled layer named ``"pool"``: ``cnn_small``,
``resnet20``...) and a two-layer projection head; the NT-Xent loss pulls the two views of an image
together against the other 2N - 2 views of the batch. After training, the encoder's pooled
features are the representation: the model called on images returns them, the ``embed`` serving
signature returns them L2-normalised, and `model.encoder` can seed a classifier.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_zoo import _validate, distribute, registry
from keras_zoo.models import layers
from keras_zoo.models._custom_step import ObjectiveStepModel, serialize
from keras_zoo.registry import Float, Int, register_model


def _pair_logits(z_a, z_b, temperature: float):
    """Cosine-similarity logits of this replica's 2n views (anchors) against every view of the
    global batch (candidates), with each anchor's own column and its positive's.

    Under a `tf.distribute` strategy the candidates are gathered from all replicas, so a replica's
    anchors meet the same 2N - 2 negatives as on one device with the global batch of N images.

    Returns:
        ``(logits (2n, 2N), positives (2n,), self_mask (2n, 2N))``.
    """
    z_a = ops.normalize(ops.cast(z_a, "float32"), axis=-1)
    z_b = ops.normalize(ops.cast(z_b, "float32"), axis=-1)
    all_a, all_b = distribute.gather(z_a), distribute.gather(z_b)
    n, total = ops.shape(z_a)[0], ops.shape(all_a)[0]
    rows = distribute.replica_offset(n) + ops.arange(n)
    logits = ops.matmul(ops.concatenate([z_a, z_b], axis=0),
                        ops.transpose(ops.concatenate([all_a, all_b], axis=0))) / temperature
    own = ops.concatenate([rows, total + rows], axis=0)
    positives = ops.concatenate([total + rows, rows], axis=0)
    return logits, positives, ops.one_hot(own, 2 * total, dtype="float32")


def nt_xent(z_a, z_b, temperature: float):
    """NT-Xent (normalised temperature-scaled cross-entropy) of two batches of paired projections.

    Args:
        z_a, z_b: ``(N, d)`` projections of two views of the same N images (row i pairs with row i).
        temperature: softmax temperature tau of the cosine similarities.

    Returns:
        ``(loss, accuracy)``: the mean cross-entropy over the 2N anchors, and the fraction of anchors
        whose most similar other view is their positive. Under a strategy: over this replica's
        anchors, against the negatives of every replica.
    """
    logits, positives, own = _pair_logits(z_a, z_b, temperature)
    # An anchor is never its own candidate: push its column to -inf (a large finite value keeps
    # the softmax NaN-free).
    logits = logits - 1e9 * own
    loss = ops.mean(ops.sparse_categorical_crossentropy(positives, logits, from_logits=True))
    accuracy = ops.mean(ops.cast(ops.equal(ops.argmax(logits, axis=-1), positives), "float32"))
    return loss, accuracy


def hard_negative_nt_xent(z_a, z_b, temperature: float, beta: float = 0.0, tau_plus: float = 0.0):
    """NT-Xent with hard negatives up-weighted and, optionally, debiased (Robinson et al. 2021).

    "Contrastive learning with hard negative samples" (ICLR 2021): each negative's term in the
    denominator is weighted by ``exp(beta * sim / tau)`` normalised to mean 1 over the anchor's
    negatives (importance weights of a distribution that favours negatives close to the anchor).
    With ``tau_plus > 0`` the debiased estimator of Chuang et al. 2020 removes the expected share
    of same-class "negatives" (class prior tau_plus), clamped below at its theoretical minimum.
    ``beta = 0`` and ``tau_plus = 0`` give NT-Xent exactly.

    Returns:
        ``(loss, accuracy)`` as `nt_xent`.
    """
    logits, positives, own = _pair_logits(z_a, z_b, temperature)
    positive_mask = ops.one_hot(positives, ops.shape(logits)[1], dtype="float32")
    negative_mask = 1.0 - own - positive_mask
    positive_logit = ops.sum(logits * positive_mask, axis=-1)
    masked = ops.where(negative_mask > 0, logits, -1e9)
    # Work relative to each row's largest logit, so no exponential overflows at small temperatures.
    top = ops.stop_gradient(ops.maximum(ops.max(masked, axis=-1), positive_logit))
    negatives = ops.exp(masked - top[:, None]) * negative_mask
    positive = ops.exp(positive_logit - top)
    count = ops.cast(ops.shape(logits)[1] - 2, "float32")
    if beta:
        weights = ops.exp(beta * (masked - top[:, None])) * negative_mask
        weights = weights * count / ops.sum(weights, axis=-1, keepdims=True)
        negatives = weights * negatives
    denominator = ops.sum(negatives, axis=-1)
    if tau_plus:
        denominator = (denominator - tau_plus * count * positive) / (1.0 - tau_plus)
        denominator = ops.maximum(denominator, count * ops.exp(-1.0 / temperature - top))
    loss = ops.mean(ops.log(positive + denominator) - ops.log(positive))
    accuracy = ops.mean(ops.cast(ops.equal(ops.argmax(logits - 1e9 * own, axis=-1), positives), "float32"))
    return loss, accuracy


@keras.saving.register_keras_serializable(package="keras_zoo")
class SimCLR(ObjectiveStepModel):
    """SimCLR pre-training of `encoder` with `projection_head`, on views drawn by `augmenter`.

    Called on images it returns the encoder's features ``(batch, feature_dim)`` (no augmentation).

    Args:
        encoder: `keras.Model` images -> pooled features.
        projection_head: `keras.Model` features -> projections the loss is computed on.
        augmenter: a `keras.Sequential` of random preprocessing layers (applied with training=True).
        temperature: NT-Xent temperature.
        hard_negative_beta: concentration beta of Robinson et al.'s hard-negative weighting (0: plain
            NT-Xent); see `hard_negative_nt_xent`.
        debias_tau_plus: class prior tau+ of the debiased estimator (0: not debiased).

    Example:
        >>> model = keras_zoo.create_model("simclr", input_shape=(8, 8, 1), encoder="cnn_small")
        >>> model.compile(optimizer="adam"); model.fit(images, epochs=50)
        >>> features = model.encoder.predict(images)
    """

    PARTS = ("encoder", "projection_head", "augmenter")

    def __init__(self, encoder, projection_head, augmenter, temperature=0.2, hard_negative_beta=0.0,
                 debias_tau_plus=0.0, **kwargs):
        temperature = _validate.positive("temperature", temperature)
        hard_negative_beta = _validate.non_negative("hard_negative_beta", hard_negative_beta)
        debias_tau_plus = _validate.rate("debias_tau_plus", debias_tau_plus)
        inputs = keras.Input(shape=tuple(encoder.inputs[0].shape[1:]), name="inputs")
        super().__init__(inputs, encoder(inputs), **kwargs)
        self.encoder = encoder
        self.projection_head = projection_head
        self.augmenter = augmenter
        self.temperature = temperature
        self.hard_negative_beta = hard_negative_beta
        self.debias_tau_plus = debias_tau_plus
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    # === Inference API ===

    def embed(self, images, training=False):
        """L2-normalised encoder features (the representation used downstream)."""
        return ops.normalize(ops.cast(self.encoder(images, training=training), "float32"), axis=-1)

    def project(self, images, training=False):
        """L2-normalised projections (the space the contrastive loss works in)."""
        features = self.encoder(images, training=training)
        return ops.normalize(ops.cast(self.projection_head(features, training=training), "float32"),
                             axis=-1)

    def classifier(self, num_classes: int, dropout: float = 0.0, freeze_encoder: bool = False,
                   name: str = "simclr_classifier") -> keras.Model:
        """A classifier seeded with this encoder: encoder -> dropout -> dense -> softmax.

        The encoder is shared, not copied (train it further, or pass ``freeze_encoder=True`` for a
        linear probe). Compile it with the ``classifier`` recipe, e.g.
        ``keras_zoo.train(model.classifier(10), "digits", recipe="classifier")``.
        """
        num_classes = _validate.positive_int("num_classes", num_classes, minimum=2)
        dropout = _validate.rate("dropout", dropout)
        self.encoder.trainable = not freeze_encoder
        inputs = keras.Input(shape=tuple(self.encoder.inputs[0].shape[1:]), name="inputs")
        outputs = layers.classification_head(self.encoder(inputs), num_classes, dropout=dropout)
        return keras.Model(inputs, outputs, name=name)

    def views(self, images):
        """Two independently augmented views of a batch."""
        return self.augmenter(images, training=True), self.augmenter(images, training=True)

    # === Training ===

    def _objective(self, images, training):
        view_a, view_b = self.views(images)
        # Both views in one pass, so batch-norm normalises over all 2N views (as SimCLR's global BN).
        features = self.encoder(ops.concatenate([view_a, view_b], axis=0), training=training)
        z = self.projection_head(features, training=training)
        n = ops.shape(images)[0]
        if self.hard_negative_beta or self.debias_tau_plus:
            return hard_negative_nt_xent(z[:n], z[n:], self.temperature, self.hard_negative_beta,
                                         self.debias_tau_plus)
        return nt_xent(z[:n], z[n:], self.temperature)

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": serialize(self.encoder), "projection_head": serialize(self.projection_head),
                "augmenter": serialize(self.augmenter), "temperature": self.temperature,
                "hard_negative_beta": self.hard_negative_beta, "debias_tau_plus": self.debias_tau_plus}



# --------------------------------------------------------------------------- builders


def registry_encoder(name: str, input_shape, options=None, grid: int | None = None) -> keras.Model:
    """A registered classifier cut at its pooled-feature layer ``"pool"``, or with `grid`, at its
    last feature maps before any spatial pooling, averaged to a ``grid x grid`` layout and flattened
    (features that keep where things are, as the rotation-pretext paper probes them).

    Args:
        name: a classifier in the registry (``"cnn_small"``, ``"resnet20"``...).
        input_shape: image shape.
        options: builder overrides of that classifier (``{"width": 64}``).
        grid: None for the globally pooled features; a positive int for ``grid * grid * channels``
            spatial features (an adaptive average pool of the last unpooled maps).

    Raises:
        ValueError: `name` is not a classifier, or it has no layer named ``"pool"``.
        KeyError: `name` is not registered.
    """
    if not isinstance(name, str):
        raise ValueError(f"encoder must be the name of a registered classifier, got {name!r}")
    spec = registry.builtin_spec(name)
    if spec.task != "classification":
        raise ValueError(
            f"encoder {name!r} is a {spec.task} model; SimCLR takes a classifier's pooled features: "
            f"one of {sorted(s.name for s in registry.builtin_specs() if s.task == 'classification')}")
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"encoder_options must be a dict of {name!r} builder arguments, got {options!r}")
    classifier = registry.build_model(spec, input_shape, **(options or {}))
    try:
        pool = classifier.get_layer("pool")
    except ValueError:
        raise ValueError(
            f"encoder {name!r} has no layer named 'pool' (the globally pooled features SimCLR "
            f"trains); classifiers in keras_zoo name that layer 'pool'") from None
    if grid is None:
        return keras.Model(classifier.input, pool.output, name="encoder")
    grid = _validate.positive_int("grid", grid)
    maps = _unpooled_maps(classifier, pool)
    if maps.shape[1] < grid or maps.shape[2] < grid:
        raise ValueError(f"grid={grid} is finer than {name!r}'s last feature maps "
                         f"({maps.shape[1]}x{maps.shape[2]} for input {tuple(input_shape)}); "
                         f"use grid <= {min(maps.shape[1], maps.shape[2])}")
    x = keras.layers.AdaptiveAveragePooling2D((grid, grid), name="grid_pool")(maps)
    return keras.Model(classifier.input, keras.layers.Flatten(name="grid_features")(x), name="encoder")


_SPATIAL_POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _unpooled_maps(model, pool):
    """The feature maps `pool` reads, followed back past the pooling layers just before it."""
    producers = {id(layer.output): layer for layer in model.layers}
    maps = pool.input
    layer = producers.get(id(maps))
    while isinstance(layer, _SPATIAL_POOLING):
        maps = layer.input
        layer = producers.get(id(maps))
    return maps


def augmenter(input_shape, crop=0.5, translate=0.2, flip=False, jitter=0.4, blur=0.5, seed=None,
              name="augmenter") -> keras.Sequential:
    """SimCLR's view generator for images in [0, 1], using only Keras preprocessing layers.

    Args:
        crop: random resized crop: each side zoomed in by up to this fraction (0 disables).
        translate: then shifted by up to this fraction of each side.
        flip: random horizontal flips (for data whose mirror images keep their class).
        jitter: strength of colour jitter (RGB: brightness, contrast, saturation, hue, plus 20%
            random grayscale; one channel: brightness and contrast).
        blur: strength of random Gaussian blur (0 disables).
        seed: seed of the first layer; each following layer takes the next integer.
    """
    crop = _validate.rate("crop", crop)
    translate = _validate.rate("translate", translate)
    jitter = _validate.rate("jitter", jitter)
    blur = _validate.non_negative("blur", blur)
    if not isinstance(flip, bool):
        raise ValueError(f"flip must be True or False, got {flip!r}")
    seeds = iter(range(seed, seed + 16)) if seed is not None else iter([None] * 16)
    channels = input_shape[-1]
    stages = []
    if crop:
        stages.append(keras.layers.RandomZoom((-crop, 0.0), (-crop, 0.0), fill_mode="nearest",
                                              seed=next(seeds), name="crop_zoom"))
    if translate:
        stages.append(keras.layers.RandomTranslation(translate, translate, fill_mode="nearest",
                                                     seed=next(seeds), name="crop_shift"))
    if flip:
        stages.append(keras.layers.RandomFlip("horizontal", seed=next(seeds), name="flip"))
    if jitter and channels == 3:
        stages.append(keras.layers.RandomColorJitter(
            value_range=(0.0, 1.0), brightness_factor=jitter, contrast_factor=jitter,
            saturation_factor=(0.5 - jitter / 2, 0.5 + jitter / 2), hue_factor=jitter / 4,
            seed=next(seeds), name="colour_jitter"))
        stages.append(keras.layers.RandomGrayscale(0.2, seed=next(seeds), name="grayscale"))
    elif jitter:
        stages.append(keras.layers.RandomBrightness(jitter, value_range=(0.0, 1.0), seed=next(seeds),
                                                    name="brightness"))
        stages.append(keras.layers.RandomContrast(jitter, value_range=(0.0, 1.0), seed=next(seeds),
                                                  name="contrast"))
    if blur:
        stages.append(keras.layers.RandomGaussianBlur(blur, kernel_size=3, sigma=(0.1, 1.0),
                                                      value_range=(0.0, 1.0), seed=next(seeds),
                                                      name="blur"))
    return keras.Sequential([keras.Input(shape=tuple(input_shape)), *stages], name=name)


def projection_head(feature_dim: int, width: int, projection_dim: int) -> keras.Model:
    """SimCLR's g(.): dense -> batch-norm -> ReLU -> dense."""
    features = keras.Input(shape=(feature_dim,), name="features")
    x = keras.layers.Dense(width, use_bias=False, name="hidden")(features)
    x = keras.layers.BatchNormalization(name="hidden_bn")(x)
    x = keras.layers.Activation("relu", name="hidden_relu")(x)
    z = keras.layers.Dense(projection_dim, dtype="float32", name="projection")(x)
    return keras.Model(features, z, name="projection_head")


@register_model(family="simclr", task="contrastive", input_shape=(28, 28, 1), recipe="simclr",
                test_input_shape=(8, 8, 1),
                search_space={"projection_dim": Int(16, 128, step=16),
                              "temperature": Float(0.05, 1.0, sampling="log"),
                              "crop": Float(0.0, 0.6), "jitter": Float(0.0, 0.8)})
def simclr(input_shape, encoder="cnn_small", encoder_options=None, projection_dim=64,
           projection_width=128, temperature=0.2, crop=0.5, translate=0.2, flip=False, jitter=0.4,
           blur=0.5, seed=None, hard_negative_beta=0.0, debias_tau_plus=0.0):
    """SimCLR: contrastive pre-training of a registry classifier's encoder, NT-Xent on two augmented views."""
    return _create_simclr(input_shape, encoder, encoder_options, projection_dim, projection_width,
                          temperature, crop, translate, flip, jitter, blur, seed, hard_negative_beta,
                          debias_tau_plus, "simclr")


@register_model(family="simclr", task="contrastive", input_shape=(28, 28, 1), recipe="simclr",
                test_input_shape=(8, 8, 1),
                search_space={"hard_negative_beta": Float(0.0, 2.0), "debias_tau_plus": Float(0.0, 0.2),
                              "temperature": Float(0.05, 1.0, sampling="log")})
def simclr_hard(input_shape, encoder="cnn_small", encoder_options=None, projection_dim=64,
                projection_width=128, temperature=0.2, crop=0.5, translate=0.2, flip=False, jitter=0.4,
                blur=0.5, seed=None, hard_negative_beta=1.0, debias_tau_plus=0.1):
    """SimCLR with hard negatives up-weighted, debiased (Robinson et al. 2021; beta 1, tau+ 0.1)."""
    return _create_simclr(input_shape, encoder, encoder_options, projection_dim, projection_width,
                          temperature, crop, translate, flip, jitter, blur, seed, hard_negative_beta,
                          debias_tau_plus, "simclr_hard")


def _create_simclr(input_shape, encoder, encoder_options, projection_dim, projection_width, temperature,
                   crop, translate, flip, jitter, blur, seed, hard_negative_beta, debias_tau_plus, name):
    projection_dim = _validate.positive_int("projection_dim", projection_dim)
    projection_width = _validate.positive_int("projection_width", projection_width)
    temperature = _validate.positive("temperature", temperature)
    views = augmenter(input_shape, crop=crop, translate=translate, flip=flip, jitter=jitter, blur=blur,
                      seed=seed)
    backbone = registry_encoder(encoder, input_shape, encoder_options)
    head = projection_head(int(backbone.outputs[0].shape[-1]), projection_width, projection_dim)
    return SimCLR(backbone, head, views, temperature=temperature, hard_negative_beta=hard_negative_beta,
                  debias_tau_plus=debias_tau_plus, name=name)
