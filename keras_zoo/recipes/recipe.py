"""The `Recipe` dataclass and the table of named recipes (`register_recipe`).

A recipe says how a model is compiled and trained well: optimizer and learning-rate schedule, loss,
metrics, batch size, epochs, regularisation, augmentation, precision, and what the data pipeline
must feed it (`targets`).
"""

from __future__ import annotations

import dataclasses
import math

from keras_zoo import _validate, distribute

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "annealing")
TARGETS = ("label", "mask", "image", "none")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a model is compiled and trained.

    Example:
        >>> recipe = get_recipe("classifier").replace(epochs=5, learning_rate=3e-3)
        >>> recipe.compile(model, steps_per_epoch=20)
    """

    name: str = "custom"
    description: str = ""
    # What the pipeline yields: (x, label) | (x, mask) | (x, x) | x.
    targets: str = "label"
    # === Optimisation ===
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    # schedule="step": the rate times `step_factor` at each of these fractions of the epochs
    # (He et al.'s CIFAR-10 schedule: x0.1 at 50 % and 75 %).
    step_at: tuple = (0.5, 0.75)
    step_factor: float = 0.1
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    momentum: float = 0.9
    # SGD only: Nesterov momentum (True) or classical heavy-ball momentum (False, as He et al.).
    nesterov: bool = True
    # Adam/AdamW first-moment decay (Keras's default 0.9; GANs train far better with 0.5).
    beta_1: float = 0.9
    clipnorm: float | None = None
    # === Objective ===
    loss: str | None = "sparse_categorical_crossentropy"
    label_smoothing: float = 0.0
    metrics: tuple = ("accuracy",)
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    # === Schedule of the run ===
    batch_size: int = 64
    epochs: int = 30
    # The fewest optimizer steps a run takes: a training split too small for `epochs` epochs to reach
    # it trains more epochs (`epochs_for`). An explicit epoch count (`train(epochs=...)`, `--epochs`)
    # is taken as given. None: `epochs`, whatever the data's size.
    min_steps: int | None = None
    # === Several devices (see keras_zoo.distribute.Distribution) ===
    # False: batch_size is the global batch, split over the replicas; True: each replica's.
    batch_per_replica: bool = False
    # "linear": learning_rate times the number of replicas; "none": as written.
    lr_scaling: str = "none"
    early_stopping_patience: int | None = 8
    # === Data ===
    augment: tuple = ()
    # Input corruption for targets="image" (denoising, masking): a spec string such as
    # "gaussian:0.3", "salt_pepper:0.1" or "mask_patches:0.5,size=2" (see keras_zoo.data.corruptions).
    corruption: str | None = None
    # === Numerics ===
    # "auto": mixed_bfloat16 where it was measured faster at equal held-out accuracy for the model's
    # family on this kind of CPU, float32 elsewhere (see keras_zoo.recipes.precision.choose_precision).
    precision: str = "auto"

    def __post_init__(self):
        _validate.one_of("targets", self.targets, TARGETS)
        _validate.one_of("optimizer", self.optimizer, OPTIMIZERS)
        _validate.one_of("schedule", self.schedule, SCHEDULES)
        _validate.positive("learning_rate", self.learning_rate)
        _validate.non_negative("weight_decay", self.weight_decay)
        _validate.rate("momentum", self.momentum)
        _validate.rate("beta_1", self.beta_1)
        _validate.rate("label_smoothing", self.label_smoothing)
        _validate.positive_int("batch_size", self.batch_size)
        _validate.positive_int("epochs", self.epochs)
        if self.min_steps is not None:
            _validate.positive_int("min_steps", self.min_steps)
        _validate.positive_int("warmup_epochs", self.warmup_epochs, minimum=0)
        _validate.one_of("monitor_mode", self.monitor_mode, ("min", "max"))
        _validate.one_of("precision", self.precision, PRECISIONS)
        _validate.one_of("lr_scaling", self.lr_scaling, distribute.LR_SCALINGS)
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {self.nesterov!r}")
        _validate.rate("step_factor", self.step_factor)
        steps = tuple(self.step_at) if isinstance(self.step_at, (tuple, list)) else None
        if steps is None or not all(isinstance(f, (int, float)) and 0 < f < 1 for f in steps) \
                or list(steps) != sorted(set(steps)):
            raise ValueError(f"step_at must be increasing fractions of the epochs in (0, 1), e.g. (0.5, 0.75); "
                             f"got {self.step_at!r}")
        object.__setattr__(self, "step_at", tuple(float(f) for f in steps))
        if self.schedule == "step" and self.warmup_epochs:
            raise ValueError(f"schedule='step' takes no warmup; got warmup_epochs={self.warmup_epochs}")
        if not isinstance(self.batch_per_replica, bool):
            raise ValueError(f"batch_per_replica must be True or False, got {self.batch_per_replica!r}")
        if self.early_stopping_patience is not None:
            _validate.positive_int("early_stopping_patience", self.early_stopping_patience)
        if self.clipnorm is not None:
            _validate.positive("clipnorm", self.clipnorm)
        if self.loss is not None:
            from keras_zoo.recipes import objectives

            objectives.check_loss(self.loss)
            for m in self.metrics:
                objectives.check_metric(m)
        if self.corruption is not None:
            from keras_zoo.data.corruptions import parse_corruption

            if self.targets != "image":
                raise ValueError(f"corruption={self.corruption!r} needs targets='image', got {self.targets!r}")
            parse_corruption(self.corruption)
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "augment", tuple(self.augment))

    def replace(self, **changes) -> "Recipe":
        """A copy with `changes` applied (and validated); unknown fields raise `ValueError`."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; accepted: {sorted(fields)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # === Building the Keras objects ===

    def learning_rate_schedule(self, steps_per_epoch: int):
        import keras

        steps_per_epoch = max(1, int(steps_per_epoch))
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "annealing":
            # Ganin et al.'s mu_0 / (1 + 10p)^0.75 over the whole run (domain-adversarial training).
            from keras_zoo.recipes.schedules import AnnealingDecay

            return AnnealingDecay(self.learning_rate, self.epochs * steps_per_epoch)
        warmup = self.warmup_epochs * steps_per_epoch
        if self.schedule == "step":
            # Boundaries in optimizer steps: with 164 epochs, epoch 83 (after 50 %) trains at a tenth of
            # the rate, as in He et al. (32k and 48k of 64k iterations); a half epoch rounds up. The
            # schedule reads the step count before the update, and PiecewiseConstantDecay switches
            # after a boundary: hence -1.
            total_steps = self.epochs * steps_per_epoch
            boundaries = [math.floor(f * self.epochs + 0.5) * steps_per_epoch - 1 for f in self.step_at]
            boundaries = sorted({min(max(b, 0), total_steps) for b in boundaries})
            values = [self.learning_rate * self.step_factor ** i for i in range(len(boundaries) + 1)]
            return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        total = max(1, self.epochs * steps_per_epoch - warmup)
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                0.0, total, warmup_target=self.learning_rate, warmup_steps=warmup)
        return keras.optimizers.schedules.CosineDecay(self.learning_rate, total)

    def build_optimizer(self, steps_per_epoch: int = 1):
        import keras

        lr = self.learning_rate_schedule(steps_per_epoch)
        common = {"learning_rate": lr, "clipnorm": self.clipnorm}
        if self.weight_decay:
            common["weight_decay"] = self.weight_decay
        if self.optimizer == "adam":
            return keras.optimizers.Adam(beta_1=self.beta_1, **common)
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(beta_1=self.beta_1, **common)
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(momentum=self.momentum, nesterov=self.nesterov, **common)
        return keras.optimizers.RMSprop(**common)

    def compile(self, model, steps_per_epoch: int = 1):
        """Compile `model` with this recipe's optimizer, loss and metrics; returns the model.

        Models with their own `train_step` (GAN, VAE, SimCLR) take the optimizer and build their
        losses themselves: their recipes set `loss=None`.
        """
        from keras_zoo.recipes import objectives

        kwargs = {"optimizer": self.build_optimizer(steps_per_epoch)}
        if self.loss is not None:
            kwargs["loss"] = objectives.build_loss(self.loss, label_smoothing=self.label_smoothing)
            outputs = getattr(model, "outputs", None)
            num_classes = outputs[0].shape[-1] if outputs else None
            kwargs["metrics"] = [objectives.build_metric(m, num_classes=num_classes) for m in self.metrics]
        model.compile(**kwargs)
        if self.loss is not None and model.built:
            # Without a tf.distribute strategy Keras creates the optimizer's slot variables while
            # it traces the first training step, where each variable is lifted out of the graph
            # one by one; created here, eagerly, the first step of `cnn_fast` took 1.35-1.5 s
            # instead of 2.3-2.8 s (four processes each). Keras's own train_step updates exactly
            # `model.trainable_variables`; models with their own train_step (loss=None) are left
            # to build theirs.
            model.optimizer.build(model.trainable_variables)
        return model

    def steps_per_epoch(self, num_examples: int) -> int:
        return max(1, math.ceil(num_examples / self.batch_size))

    def epochs_for(self, num_examples: int) -> int:
        """The epochs a run on `num_examples` training examples takes: `epochs`, or more where
        `min_steps` asks for more steps than `epochs` epochs of that data give."""
        if self.min_steps is None:
            return self.epochs
        return max(self.epochs, math.ceil(self.min_steps / self.steps_per_epoch(num_examples)))


_RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Register a named recipe; a name registered twice raises."""
    if recipe.name in _RECIPES:
        raise ValueError(f"recipe {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def registered_recipes() -> dict:
    """A copy of the table of registered recipes, by name."""
    return dict(_RECIPES)
