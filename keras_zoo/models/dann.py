"""Domain-adversarial training (the `dann` family): Ganin et al., JMLR 2016.

A feature extractor feeds two heads: a label predictor trained on labelled *source* images, and a
domain classifier that tells source features from *target* features, behind a gradient reversal
layer. The reversal makes the extractor maximise the domain classifier's loss while the classifier
minimises it, so the features that survive are those the two domains share; the label predictor
trained on them then carries over to the unlabelled target domain.

Called on images the model returns the label predictor's class probabilities, so it saves, reloads,
evaluates and exports as any classifier does. Its training step takes either ``((source, target),
labels)`` (adaptation: the label loss on the source plus the domain loss on both) or ``(images,
labels)`` (the label loss only). ``adaptation=False`` trains the same network on the source only,
the baseline the paper compares with. `keras_zoo.train("dann", source, target=target)` pairs the
two data sets.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_zoo import _validate
from keras_zoo.models._custom_step import CustomStepModel, serialize
from keras_zoo.recipes import schedules  # noqa: F401  (registers the annealing schedule for loading)
from keras_zoo.registry import Choice, Float, Int, register_model


@keras.saving.register_keras_serializable(package="keras_zoo")
class GradientReversal(keras.layers.Layer):
    """Identity on the way forward; multiplies the gradient by ``-weight`` on the way back.

    Args:
        weight: the reversal weight lambda used when `call` is given none (DANN passes the
            scheduled lambda_p of each step instead).
    """

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = _validate.non_negative("weight", weight)

    def call(self, inputs, weight=None):
        import tensorflow as tf

        scale = tf.cast(self.weight if weight is None else weight, inputs.dtype)

        @tf.custom_gradient
        def reverse(x):
            def grad(upstream):
                return -scale * upstream

            return tf.identity(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def reversal_weight(progress, gamma: float = 10.0):
    """The paper's schedule lambda_p = 2 / (1 + exp(-gamma p)) - 1 for progress p in [0, 1]:
    0 at the start (the domain classifier's noisy early gradients are kept off the features), near 1
    at the end."""
    return 2.0 / (1.0 + ops.exp(-gamma * progress)) - 1.0


@keras.saving.register_keras_serializable(package="keras_zoo")
class DANN(CustomStepModel):
    """Domain-adversarial network: `label_predictor(feature_extractor(x))`, trained against
    `domain_classifier(GradientReversal(feature_extractor(x)))`.

    Args:
        feature_extractor: `keras.Model` images -> feature vectors.
        label_predictor: `keras.Model` features -> class probabilities.
        domain_classifier: `keras.Model` features -> one logit (target vs source).
        adaptation: False trains on the source labels only (the domain loss is not computed).
        domain_weight: scales lambda_p (the paper: 1).
        gamma: steepness of the lambda_p schedule (the paper: 10).
        total_steps: training steps the schedule's progress p = step / total_steps runs over
            (`keras_zoo.train` sets it from the recipe); 0 holds lambda at `domain_weight`.

    Example:
        >>> model = keras_zoo.create_model("dann", input_shape=(28, 28, 3))
        >>> keras_zoo.get_recipe("dann").compile(model)
        >>> model.fit(tf.data.Dataset.zip(((source_x, target_x), source_y)).batch(64))
    """

    PARTS = ("feature_extractor", "label_predictor", "domain_classifier", "reversal")
    # `keras_zoo.train(..., target=)` pairs its batches with unlabelled target images.
    takes_target = True

    def __init__(self, feature_extractor, label_predictor, domain_classifier, reversal=None,
                 adaptation: bool = True, domain_weight: float = 1.0, gamma: float = 10.0,
                 total_steps: int = 0, **kwargs):
        if not isinstance(adaptation, bool):
            raise ValueError(f"adaptation must be True or False, got {adaptation!r}")
        domain_weight = _validate.non_negative("domain_weight", domain_weight)
        gamma = _validate.positive("gamma", gamma)
        total_steps = _validate.positive_int("total_steps", total_steps, minimum=0)
        inputs = keras.Input(shape=tuple(feature_extractor.inputs[0].shape[1:]), name="inputs")
        super().__init__(inputs, label_predictor(feature_extractor(inputs)), **kwargs)
        self.feature_extractor = feature_extractor
        self.label_predictor = label_predictor
        self.domain_classifier = domain_classifier
        self.reversal = reversal if reversal is not None else GradientReversal(name="gradient_reversal")
        self.adaptation = adaptation
        self.domain_weight = domain_weight
        self.gamma = gamma
        self.total_steps = total_steps
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.domain_loss_tracker = keras.metrics.Mean(name="domain_loss")
        self.domain_accuracy_tracker = keras.metrics.Mean(name="domain_accuracy")
        self.lambda_tracker = keras.metrics.Mean(name="reversal_weight")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker, self.domain_loss_tracker,
                self.domain_accuracy_tracker, self.lambda_tracker]

    # === Training ===

    def current_reversal_weight(self):
        """lambda_p at the optimizer's current step (domain_weight where total_steps is 0)."""
        if not self.total_steps:
            return ops.convert_to_tensor(self.domain_weight, "float32")
        step = ops.cast(self.optimizer.iterations, "float32")
        progress = ops.minimum(step / float(self.total_steps), 1.0)
        return self.domain_weight * reversal_weight(progress, self.gamma)

    @staticmethod
    def _split(x):
        if isinstance(x, dict):
            return x["source"], x.get("target")
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(f"DANN takes (source_images, target_images) as inputs; got {len(x)} tensors")
            return x[0], x[1]
        return x, None

    @staticmethod
    def _domain_loss(domains, logits, n):
        """The paper's domain term (JMLR 2016, eq. 9): the mean loss over the source images plus the mean
        over the target images, not one mean over both (which would halve it against the label loss)."""
        losses = ops.binary_crossentropy(domains, logits, from_logits=True)
        return ops.mean(losses[:n]) + ops.mean(losses[n:])

    def _class_loss(self, labels, probabilities):
        probabilities = ops.cast(probabilities, "float32")
        return ops.mean(ops.sparse_categorical_crossentropy(labels, probabilities))

    def train_step(self, data):
        import tensorflow as tf

        x, y = self._unpack(data)
        if y is None:
            raise ValueError("DANN trains on labelled source images: the data must yield (images, labels)")
        source, target = self._split(x)
        adapt = self.adaptation and target is not None
        lam = self.current_reversal_weight()
        with tf.GradientTape() as tape:
            if adapt:
                n = ops.shape(source)[0]
                features = self.feature_extractor(ops.concatenate([source, target], axis=0), training=True)
                probabilities = self.label_predictor(features[:n], training=True)
                logits = ops.cast(self.domain_classifier(self.reversal(features, weight=lam), training=True),
                                  "float32")[:, 0]
                domains = ops.concatenate([ops.zeros((n,)), ops.ones((ops.shape(target)[0],))], axis=0)
                domain_loss = self._domain_loss(domains, logits, n)
            else:
                probabilities = self.label_predictor(self.feature_extractor(source, training=True), training=True)
                domain_loss = ops.convert_to_tensor(0.0)
            class_loss = self._class_loss(y, probabilities)
            objective = class_loss + domain_loss + sum(self.losses, 0.0)
        # Without the domain loss the domain classifier has no gradient: step the other parts only.
        variables = self.trainable_variables if adapt else (
            self.feature_extractor.trainable_variables + self.label_predictor.trainable_variables)
        self._minimise(self.optimizer, tape, objective, variables)
        self.loss_tracker.update_state(class_loss)
        self.accuracy_tracker.update_state(y, probabilities)
        self.lambda_tracker.update_state(lam)
        if adapt:
            self.domain_loss_tracker.update_state(domain_loss)
            hits = ops.cast(ops.equal(ops.cast(logits > 0, "float32"), domains), "float32")
            self.domain_accuracy_tracker.update_state(ops.mean(hits))
        return self._results()

    def test_step(self, data):
        x, y = self._unpack(data)
        source, _ = self._split(x)
        probabilities = self(source, training=False)
        self.loss_tracker.update_state(self._class_loss(y, probabilities))
        self.accuracy_tracker.update_state(y, probabilities)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    # === Config ===

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "feature_extractor": serialize(self.feature_extractor),
                "label_predictor": serialize(self.label_predictor),
                "domain_classifier": serialize(self.domain_classifier),
                "reversal": serialize(self.reversal), "adaptation": self.adaptation,
                "domain_weight": self.domain_weight, "gamma": self.gamma, "total_steps": self.total_steps}


# --------------------------------------------------------------------------- builder


# The smallest image the unpadded network takes: 16 -> 12 -> 6 -> 2 -> 1.
MIN_VALID_SIZE = 16


def _dense_stack(inputs, widths, dropout, prefix):
    x = inputs
    for i, units in enumerate(widths):
        x = keras.layers.Dense(units, activation="relu", name=f"{prefix}{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}{i}_dropout")(x)
    return x


@register_model(family="dann", task="classification", input_shape=(28, 28, 3), num_classes=10,
                recipe="dann", test_input_shape=(8, 8, 3),
                search_space={"filters": Int(16, 64, step=16), "head_width": Int(50, 200, step=50),
                              "dropout": Float(0.0, 0.5), "domain_weight": Float(0.1, 1.0),
                              "domain_width": Choice((100, 500, 1024))})
def dann(input_shape, num_classes=10, filters=32, head_width=100, domain_width=100, dropout=0.0,
         adaptation=True, domain_weight=1.0, gamma=10.0, total_steps=0, padding="auto"):
    """Domain-adversarial network (Ganin et al. 2016): conv features, a label predictor, and a domain
    classifier behind a gradient reversal layer; ``adaptation=False`` trains on the source only.

    The defaults are the paper's MNIST -> MNIST-M network: conv 5x5 (32) -> max-pool -> conv 5x5 (48)
    -> max-pool, unpadded (28x28 -> 4x4x48 features); label predictor 100 -> 100 -> K; domain
    classifier 100 -> 1. ``padding="auto"`` is the paper's ``valid`` where the image is at least
    16x16 and ``same`` below (8x8 digits), ``valid``/``same`` force one.
    """
    _validate.one_of("padding", padding, ("auto", "valid", "same"))
    filters = _validate.positive_int("filters", filters)
    head_width = _validate.positive_int("head_width", head_width)
    domain_width = _validate.positive_int("domain_width", domain_width)
    dropout = _validate.rate("dropout", dropout)
    num_classes = _validate.positive_int("num_classes", num_classes, minimum=2)
    if len(input_shape) != 3:
        raise ValueError(f"dann takes images (H, W, C); got input_shape {tuple(input_shape)}")

    if padding == "auto":
        padding = "valid" if min(input_shape[:2]) >= MIN_VALID_SIZE else "same"
    elif padding == "valid" and min(input_shape[:2]) < MIN_VALID_SIZE:
        raise ValueError(f"padding='valid' needs images of at least {MIN_VALID_SIZE}x{MIN_VALID_SIZE} (two 5x5 "
                         f"convolutions and two poolings); got input_shape {tuple(input_shape)}: use 'same' or 'auto'")
    images = keras.Input(shape=tuple(input_shape), name="images")
    # Zero-centred inputs (the paper subtracts the pixel mean): a black MNIST background and a photo's
    # start at the same distance from the filters' origin.
    x = keras.layers.Rescaling(1.0, offset=-0.5, name="center")(images)
    x = keras.layers.Conv2D(filters, 5, padding=padding, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(filters * 3 // 2, 5, padding=padding, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    features = keras.layers.Flatten(name="flatten")(x)
    extractor = keras.Model(images, features, name="feature_extractor")

    width = int(features.shape[-1])
    inputs = keras.Input(shape=(width,), name="features")
    hidden = _dense_stack(inputs, (head_width, head_width), dropout, "label_dense")
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                       name="probabilities")(hidden)
    predictor = keras.Model(inputs, probabilities, name="label_predictor")

    inputs = keras.Input(shape=(width,), name="features")
    hidden = _dense_stack(inputs, (domain_width,), 0.0, "domain_dense")
    logit = keras.layers.Dense(1, dtype="float32", name="domain_logit")(hidden)
    domain = keras.Model(inputs, logit, name="domain_classifier")
    return DANN(extractor, predictor, domain, adaptation=adaptation, domain_weight=domain_weight,
                gamma=gamma, total_steps=total_steps, name="dann")

