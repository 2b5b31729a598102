"""Losses and metrics by name, so recipes stay plain data.

Keras's own losses and metrics are used wherever they fit; the few defined here are registered as
serializable so a compiled `.keras` file reloads in safe mode without `custom_objects`.
"""

from __future__ import annotations

import inspect

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_zoo")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing.

    Keras's `SparseCategoricalCrossentropy` has no `label_smoothing`, so the integer labels are
    one-hot encoded and passed to the categorical loss, which does.
    """

    def __init__(self, label_smoothing=0.0, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        y_true = ops.one_hot(ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32"), num_classes)
        return keras.losses.categorical_crossentropy(
            y_true, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _sparse_ce(label_smoothing=0.0):
    if label_smoothing:
        return SparseCategoricalCrossentropyWithSmoothing(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


# name -> factory(label_smoothing) ; families add their own entries here.
LOSSES = {
    "sparse_categorical_crossentropy": _sparse_ce,
    "mse": lambda label_smoothing=0.0: keras.losses.MeanSquaredError(),
    "mae": lambda label_smoothing=0.0: keras.losses.MeanAbsoluteError(),
    "binary_crossentropy": lambda label_smoothing=0.0: keras.losses.BinaryCrossentropy(
        label_smoothing=label_smoothing),
}

METRICS = {
    "accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    "top5_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
    "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
    "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
}


def check_loss(name: str) -> None:
    """ValueError naming the accepted losses unless `name` is one of them."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; accepted: {sorted(LOSSES)}")


def check_metric(name: str) -> None:
    """ValueError naming the accepted metrics unless `name` is one of them."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; accepted: {sorted(METRICS)}")


def build_loss(name: str, label_smoothing: float = 0.0):
    """A fresh Keras loss object for the loss named `name`."""
    check_loss(name)
    return LOSSES[name](label_smoothing=label_smoothing)


def build_metric(name: str, num_classes: int | None = None):
    """A fresh metric by name; metrics that count classes (``mean_iou``) need `num_classes`."""
    check_metric(name)
    factory = METRICS[name]
    if inspect.signature(factory).parameters:
        if num_classes is None:
            raise ValueError(f"metric {name!r} needs num_classes (the model's number of output classes)")
        return factory(num_classes)
    return factory()


# === Reconstruction and segmentation (autoencoder and unet families) ===


class _PerImageMean(keras.metrics.Mean):
    """Mean of a per-image figure of (y_true, y_pred), both cast to float32; subclasses define
    `per_image`. Per-pixel sample weights (a masked-pixel loss) are ignored, per-image weights of
    shape ``(batch,)`` apply."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        import tensorflow as tf

        values = self.per_image(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32))
        return super().update_state(values, sample_weight=_per_image(sample_weight))


@keras.saving.register_keras_serializable(package="keras_zoo")
class PSNR(_PerImageMean):
    """Mean per-image peak signal-to-noise ratio in dB (`tf.image.psnr`), images in [0, `max_val`].

    A perfect reconstruction has infinite PSNR; it counts as `cap` dB so one exact copy cannot turn
    the mean into infinity. The figure is always over whole images.
    """

    def __init__(self, max_val=1.0, cap=100.0, name="psnr", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val = float(max_val)
        self.cap = float(cap)

    def per_image(self, y_true, y_pred):
        import tensorflow as tf

        values = tf.image.psnr(y_true, y_pred, max_val=self.max_val)
        return tf.where(tf.math.is_finite(values), values, self.cap)

    def get_config(self):
        return {"max_val": self.max_val, "cap": self.cap, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="keras_zoo")
class SSIM(_PerImageMean):
    """Mean per-image structural similarity (`tf.image.ssim`), images in [0, `max_val`].

    The Gaussian window is 11 pixels wide, or the image size where images are smaller (8x8 digits),
    since `tf.image.ssim` needs the window to fit.
    """

    def __init__(self, max_val=1.0, filter_size=11, name="ssim", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val = float(max_val)
        self.filter_size = int(filter_size)

    def per_image(self, y_true, y_pred):
        import tensorflow as tf

        sizes = [d for d in y_pred.shape[-3:-1] if d is not None]
        size = min([self.filter_size, *sizes])
        return tf.image.ssim(y_true, y_pred, max_val=self.max_val, filter_size=size)

    def get_config(self):
        return {"max_val": self.max_val, "filter_size": self.filter_size, "name": self.name,
                "dtype": self.dtype}


def _per_image(sample_weight):
    """Keep per-image weights; per-pixel weights (a loss mask) do not weight whole-image figures."""
    if sample_weight is None or len(sample_weight.shape) != 1:
        return None
    return sample_weight


@keras.saving.register_keras_serializable(package="keras_zoo")
class SparseCrossentropyDice(keras.losses.Loss):
    """Per-pixel sparse categorical cross-entropy plus `dice_weight` x soft Dice loss.

    The Dice term, 1 - mean over classes of (2|P∩T| + s) / (|P| + |T| + s), is computed per image from
    the predicted probabilities; it counters the pull of a large background class that plain
    cross-entropy has on segmentation masks.
    """

    def __init__(self, dice_weight=1.0, smooth=1.0, label_smoothing=0.0,
                 name="sparse_crossentropy_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        num_classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        onehot = ops.one_hot(labels, num_classes)
        ce = keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=self.label_smoothing)
        spatial = tuple(range(1, len(y_pred.shape) - 1))
        ce = ops.mean(ce, axis=spatial)
        intersection = ops.sum(onehot * y_pred, axis=spatial)
        total = ops.sum(onehot, axis=spatial) + ops.sum(y_pred, axis=spatial)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        return ce + self.dice_weight * (1.0 - ops.mean(dice, axis=-1))

    def get_config(self):
        return {**super().get_config(), "dice_weight": self.dice_weight, "smooth": self.smooth,
                "label_smoothing": self.label_smoothing}


LOSSES["sparse_crossentropy_dice"] = lambda label_smoothing=0.0: SparseCrossentropyDice(
    label_smoothing=label_smoothing)

METRICS.update({
    "psnr": lambda: PSNR(name="psnr"),
    "ssim": lambda: SSIM(name="ssim"),
    "pixel_accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
    # Keras's MeanIoU takes argmax of the probabilities itself with sparse_y_pred=False.
    "mean_iou": lambda num_classes: keras.metrics.MeanIoU(
        num_classes=num_classes, sparse_y_pred=False, name="mean_iou"),
})
