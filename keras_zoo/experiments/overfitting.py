"""Regularisation compared on one over-parameterised task.

A wide MLP trained on a small subset of the digits memorises its training set; dropout, L2 and L1
weight penalties and early stopping (on a held-out validation split) each trade a little training
fit for a smaller generalisation gap. Every setting uses the same data, network, recipe and seed.
"""

from __future__ import annotations

import time

import numpy as np

from keras_zoo.evaluation import to_numpy
from keras_zoo.experiments import _common

# name -> (builder overrides, early stopping?)
REGULARIZERS = {
    "none": ({}, False),
    "dropout 0.5": ({"dropout": 0.5}, False),
    "L2 1e-3": ({"l2": 1e-3}, False),
    "L1 1e-4": ({"l1": 1e-4}, False),
    "early stopping": ({}, True),
    "dropout + L2 + early stopping": ({"dropout": 0.5, "l2": 1e-3}, True),
}

_PRESETS = {
    "small": {"train_examples": 150, "width": 128, "epochs": 15, "patience": 3},
    # default: 200 training digits for a 2 x 512 net (~300k weights): overfitting is guaranteed.
    "default": {"train_examples": 200, "width": 512, "epochs": 150, "patience": 15},
}


def regularization(data: str = "digits", *, size: str = "default", settings=tuple(REGULARIZERS),
                   train_examples: int | None = None, width: int | None = None,
                   epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
                   verbose=0) -> _common.ResultTable:
    """Train one network with each regulariser and tabulate train/test accuracy and the gap.

    Args:
        data: a labelled source for `keras_zoo.data.load_splits` (default ``"digits"``).
        size: ``"small"`` (seconds; tests) or ``"default"`` (the lecture table).
        settings: names from `REGULARIZERS` to compare, in order.
        train_examples: size of the training subset (small, so that overfitting shows).
        width: units of each of the two hidden layers of `mlp_lecture`.
        epochs: maximum epochs; only the early-stopping settings stop sooner.
        seed: seeds the split, the subset and the initial weights.
        plot_dir: when given, writes ``regularization.png`` (validation loss per epoch and the
            train/test accuracy per setting).
        verbose: passed to ``model.fit``.

    Returns:
        A `ResultTable`, one row per setting: training and test accuracy, the gap between them,
        test cross-entropy and the epochs actually run.

    Example:
        >>> table = regularization(size="small", settings=("none", "dropout 0.5"))
        >>> table.row("dropout 0.5")["gap"]
    """
    import keras

    from keras_zoo import create_model
    from keras_zoo.data import load_splits

    size = _common.check_size(size)
    settings = _common.choices("setting", settings, REGULARIZERS)
    preset = _PRESETS[size]
    n_train = _common.sized("train_examples", train_examples, preset)
    width, epochs = _common.sized("width", width, preset), _common.sized("epochs", epochs, preset)

    # Early stopping is added below for the settings that use it.
    recipe = _common.pinned_classifier_recipe(epochs, batch_size=32)
    base = load_splits(data, batch_size=recipe.batch_size, validation_fraction=0.2,
                       test_fraction=0.3, seed=seed)
    info = base.info
    x_pool, y_pool = to_numpy(base.train, labels=True)
    if n_train > len(x_pool):
        raise ValueError(f"train_examples={n_train} exceeds the {len(x_pool)} training examples "
                         f"of {info.name!r}")
    x_train, y_train = x_pool[:n_train], y_pool[:n_train]
    x_val, y_val = to_numpy(base.validation, labels=True)
    x_test, y_test = to_numpy(base.test, labels=True)
    train = load_splits((x_train, y_train), batch_size=recipe.batch_size, validation_fraction=0.0,
                        test_fraction=0.0, seed=seed).train

    def cross_entropy(model, x, y) -> float:
        # The data term alone: Keras's `val_loss` adds the L1/L2 penalty, which would make the
        # penalised settings look worse on the very curve meant to compare them.
        p = np.asarray(model(x, training=False), dtype="float64")
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    class ValidationCrossEntropy(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []

        def on_epoch_end(self, epoch, logs=None):
            self.values.append(cross_entropy(self.model, x_val, y_val))

    rows, val_curves = [], {}
    for name in settings:
        overrides, early = REGULARIZERS[name]
        keras.utils.set_random_seed(seed)
        model = create_model("mlp_lecture", input_shape=info.input_shape,
                             num_classes=info.num_classes, width=width, depth=2, **overrides)
        recipe.compile(model, steps_per_epoch=recipe.steps_per_epoch(n_train))
        tracker = ValidationCrossEntropy()
        callbacks = [tracker]
        if early:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=preset["patience"], restore_best_weights=True))
        started = time.perf_counter()
        history = model.fit(train, validation_data=(x_val, y_val), epochs=epochs,
                            callbacks=callbacks, shuffle=False, verbose=verbose).history
        seconds = time.perf_counter() - started
        tr = model.evaluate(x_train, y_train, verbose=0, return_dict=True)
        te = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
        val_curves[name] = tracker.values
        rows.append({"setting": name,
                     "train_accuracy": float(tr["accuracy"]),
                     "test_accuracy": float(te["accuracy"]),
                     "gap": float(tr["accuracy"]) - float(te["accuracy"]),
                     "test_cross_entropy": cross_entropy(model, x_test, y_test),
                     "epochs_run": len(history["loss"]),
                     "seconds": round(seconds, 1)})

    table = _common.ResultTable(
        title=f"Regularisation: mlp_lecture (2 x {width}) on {n_train} {info.name} examples",
        columns=["setting", "train_accuracy", "test_accuracy", "gap", "test_cross_entropy", "epochs_run",
                 "seconds"],
        rows=rows,
        notes=[f"{n_train} training / {len(x_val)} validation / {len(x_test)} test examples; up "
               f"to {epochs} epochs of {recipe.optimizer} (lr {recipe.learning_rate}, "
               f"{recipe.schedule}), batch {recipe.batch_size}, seed {seed}.",
               "gap = train accuracy - test accuracy; train accuracy is measured in inference "
               "mode (dropout off).",
               "test_cross_entropy and the validation curves are the data term only (no L1/L2 "
               "penalty), so every setting is measured on the same scale.",
               f"early stopping watches val_loss with patience {preset['patience']} and restores "
               "the best weights."],
        settings={"data": data, "size": size, "train_examples": n_train, "width": width,
                  "epochs": epochs, "seed": seed},
        series={"val_cross_entropy": val_curves})
    if plot_dir is not None:
        table.plots.append(_plot(val_curves, rows, plot_dir))
    return table


def _plot(val_curves, rows, plot_dir) -> str:
    return _common.curves_and_accuracy_bars(
        val_curves, "validation cross-entropy", "validation cross-entropy: overfitting shows as a rise",
        rows, "setting", "train vs test accuracy", plot_dir, "regularization.png")
