"""Randomization tests of generalisation (Zhang et al. 2017, "Understanding deep learning requires
rethinking generalization").

One network, trained with the same recipe and no early stopping, on the true data and on
corrupted copies of it: partially and fully random labels, one fixed permutation of the pixels,
a fresh permutation per image, and Gaussian noise images with the data's mean and standard
deviation (clipped to [0, 1]). It fits all of them (training accuracy near 100 %), so the capacity
to memorise is there; test accuracy, measured on the true test labels, shows how much was
generalisation.
"""

from __future__ import annotations

import time

import numpy as np

from keras_zoo import _validate
from keras_zoo.evaluation import to_numpy
from keras_zoo.experiments import _common

CORRUPTIONS = ("true labels", "partially corrupted labels", "random labels", "shuffled pixels",
               "random pixels", "gaussian")

_PRESETS = {
    # small: the tests' setting; the shapes of the result, not its final numbers.
    "small": {"width": 128, "epochs": 12, "limit": 400},
    # default: digits (1437 train images), 2 x 512 units, 120 epochs of Adam with cosine decay:
    # enough to drive every corruption to ~100 % training accuracy on a laptop CPU.
    "default": {"width": 512, "epochs": 120, "limit": None},
}


def corrupt(corruption: str, x_train, y_train, x_test, y_test, num_classes: int, *,
            fraction: float = 0.5, seed: int = 0):
    """Corrupted copies ``(x_train, y_train, x_test, y_test)`` of a data set, as in Zhang et al.

    Label corruptions touch only the training labels (the test set keeps its true labels); input
    corruptions are applied to training and test images alike.

    Args:
        corruption: one of `CORRUPTIONS`.
        fraction: for ``"partially corrupted labels"``, the probability that a label is replaced
            by a uniformly random class.
        seed: seeds the random labels, permutations and noise.
    """
    _validate.one_of("corruption", corruption, CORRUPTIONS)
    fraction = _validate.rate("fraction", fraction)
    rng = np.random.default_rng(seed)
    x_train, x_test = np.array(x_train, dtype="float32"), np.array(x_test, dtype="float32")
    y_train, y_test = np.array(y_train), np.array(y_test)
    if corruption == "partially corrupted labels":
        replace = rng.random(len(y_train)) < fraction
        y_train = np.where(replace, rng.integers(0, num_classes, len(y_train)), y_train)
    elif corruption == "random labels":
        y_train = rng.integers(0, num_classes, len(y_train))
    elif corruption in ("shuffled pixels", "random pixels"):
        # Permute pixel positions (all channels of a pixel move together).
        shape = x_train.shape[1:]
        pixels = int(np.prod(shape[:-1]))

        def permute(x, perms):
            flat = x.reshape(len(x), pixels, shape[-1])
            return np.take_along_axis(flat, perms[:, :, None], axis=1).reshape(x.shape)

        if corruption == "shuffled pixels":
            perm = rng.permutation(pixels)
            x_train = permute(x_train, np.broadcast_to(perm, (len(x_train), pixels)))
            x_test = permute(x_test, np.broadcast_to(perm, (len(x_test), pixels)))
        else:
            x_train = permute(x_train, np.argsort(rng.random((len(x_train), pixels)), axis=1))
            x_test = permute(x_test, np.argsort(rng.random((len(x_test), pixels)), axis=1))
    elif corruption == "gaussian":
        # Noise with the data's mean and standard deviation, clipped to the pixel range [0, 1]
        # that every image source of the package (and so `load_splits`) works in.
        mean, std = float(x_train.mean()), float(x_train.std())
        x_train = np.clip(rng.normal(mean, std, x_train.shape), 0.0, 1.0).astype("float32")
        x_test = np.clip(rng.normal(mean, std, x_test.shape), 0.0, 1.0).astype("float32")
    return x_train, y_train.astype("int32"), x_test, y_test.astype("int32")


def random_labels(data: str = "digits", *, size: str = "default",
                  corruptions=CORRUPTIONS, fraction: float = 0.5, width: int | None = None,
                  epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
                  verbose=0, model: str = "mlp_lecture", limit: int | None = None) -> _common.ResultTable:
    """Fit one network to true and corrupted data and compare training and test accuracy.

    Args:
        data: a labelled image source for `keras_zoo.data.load_splits` (default the built-in
            ``"digits"``; an image folder of photos, ``train/<class>/`` and ``test/<class>/``, works
            the same way).
        size: ``"small"`` (seconds; tests) or ``"default"`` (the lecture result; a few minutes on
            a CPU).
        corruptions: which of `CORRUPTIONS` to run, in order.
        fraction: label-corruption probability for ``"partially corrupted labels"``.
        width: the network's width: units in each of the two hidden layers of `mlp_lecture`
            (preset by `size`), or the first stage's filters of a convnet (its own default when
            not given).
        epochs: training epochs for every run; early stopping is off, the point is to fit.
        seed: seeds the split, the corruptions and the initial weights.
        plot_dir: when given, writes ``random_labels.png`` (training loss per epoch for each
            corruption, as in the paper's figure 1a, and train/test accuracy bars) there.
        verbose: passed to ``model.fit``.
        model: a registered classifier to fit (default the lecture's MLP; ``"cnn_small"`` or
            ``"cnn_fast"`` for a small convnet, as the paper's CIFAR-10 runs used), built without
            dropout: the paper's networks fit without regularisation.
        limit: keep this many training images (the first of the seeded shuffle; default all, or
            400 at ``size="small"``); the test split is kept whole.

    Returns:
        A `ResultTable`, one row per corruption: final training loss, training and test accuracy,
        chance level, the first epoch whose running training accuracy reached 95 %, seconds, and
        ``slowdown``: how many times the true labels' epochs to 95 % each corruption took.

    Example:
        >>> table = random_labels(size="small", corruptions=("true labels", "random labels"))
        >>> table.row("random labels")["test_accuracy"]
    """
    import keras

    from keras_zoo import create_model
    from keras_zoo.data import load_splits
    from keras_zoo.factory import get_spec

    size = _common.check_size(size)
    corruptions = _common.choices("corruption", corruptions, CORRUPTIONS)
    fraction = _validate.rate("fraction", fraction)
    preset = _PRESETS[size]
    epochs = _common.sized("epochs", epochs, preset)
    spec = get_spec(model)
    if spec.task != "classification" or not spec.accepts_num_classes:
        raise ValueError(f"model {model!r} is a {spec.task!r} model; random_labels fits a classifier, "
                         "e.g. 'mlp_lecture', 'cnn_small' or 'cnn_fast'")
    builder = {}
    if model == "mlp_lecture":
        width = _common.sized("width", width, preset)
        builder = {"width": width, "depth": 2}
    elif width is not None:
        if "width" not in spec.defaults:
            raise ValueError(f"model {model!r} takes no width; leave width=None")
        builder["width"] = _validate.positive_int("width", width)
    else:
        width = spec.defaults.get("width")
    if "dropout" in spec.defaults:
        builder["dropout"] = 0.0
    limit = preset["limit"] if limit is None else _validate.positive_int("limit", limit)

    recipe = _common.pinned_classifier_recipe(epochs, batch_size=64)
    base = load_splits(data, batch_size=recipe.batch_size, validation_fraction=0.0,
                       test_fraction=0.2, seed=seed)
    info = base.info
    if info.num_classes is None:
        raise ValueError(f"data {data!r} has no class labels; random_labels needs a labelled set")
    x_train, y_train = to_numpy(base.train, labels=True)
    x_test, y_test = to_numpy(base.test, labels=True)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    chance = 1.0 / info.num_classes

    rows, curves = [], {}
    for i, corruption in enumerate(corruptions):
        xtr, ytr, xte, yte = corrupt(corruption, x_train, y_train, x_test, y_test,
                                     info.num_classes, fraction=fraction, seed=seed + i)
        # The corrupted set goes through the same pipeline as any numpy source.
        train = load_splits((xtr, ytr), batch_size=recipe.batch_size, validation_fraction=0.0,
                            test_fraction=0.0, seed=seed).train
        keras.utils.set_random_seed(seed)
        net = create_model(model, input_shape=info.input_shape, num_classes=info.num_classes, **builder)
        recipe.compile(net, steps_per_epoch=recipe.steps_per_epoch(len(xtr)))
        started = time.perf_counter()
        # shuffle=False: the pipeline already reshuffles every epoch.
        history = net.fit(train, epochs=epochs, shuffle=False, verbose=verbose).history
        seconds = time.perf_counter() - started
        fitted = [k + 1 for k, a in enumerate(history["accuracy"]) if a >= 0.95]
        train_metrics = net.evaluate(xtr, ytr, verbose=0, return_dict=True)
        test_metrics = net.evaluate(xte, yte, verbose=0, return_dict=True)
        curves[corruption] = [float(v) for v in history["loss"]]
        rows.append({"corruption": corruption,
                     "train_loss": float(train_metrics["loss"]),
                     "train_accuracy": float(train_metrics["accuracy"]),
                     "test_accuracy": float(test_metrics["accuracy"]),
                     "chance": chance,
                     "epochs_to_95": fitted[0] if fitted else None,
                     "seconds": round(seconds, 1)})

    # The paper's "small constant factor": epochs to fit a corruption over epochs to fit the truth.
    truth = next((r["epochs_to_95"] for r in rows if r["corruption"] == "true labels"), None)
    for row in rows:
        row["slowdown"] = (round(row["epochs_to_95"] / truth, 2)
                           if truth and row["epochs_to_95"] else None)
    described = f"2 x {width}" if model == "mlp_lecture" else f"width {width}, no dropout"
    table = _common.ResultTable(
        title=f"Randomization test: {model} ({described}) on {info.name}",
        columns=["corruption", "train_loss", "train_accuracy", "test_accuracy", "chance",
                 "epochs_to_95", "slowdown", "seconds"],
        rows=rows,
        notes=[f"{len(x_train)} training / {len(x_test)} test images; {epochs} epochs of "
               f"{recipe.optimizer} (lr {recipe.learning_rate}, {recipe.schedule}), batch "
               f"{recipe.batch_size}, no early stopping, seed {seed}.",
               "test accuracy is on the true test labels; input corruptions are applied to the "
               "test images too; gaussian images are clipped to [0, 1].",
               f"partially corrupted labels: each training label replaced by a random class "
               f"with probability {fraction}.",
               "epochs_to_95 = first epoch whose running training accuracy reached 95 % "
               "(empty: never); slowdown = epochs_to_95 / that of the true labels."],
        settings={"data": str(data), "size": size, "model": model, "width": width, "epochs": epochs,
                  "limit": limit, "fraction": fraction, "seed": seed},
        series={"train_loss": curves})
    if plot_dir is not None:
        table.plots.append(_plot(curves, rows, chance, plot_dir))
    return table


def _plot(curves, rows, chance, plot_dir) -> str:
    return _common.curves_and_accuracy_bars(
        curves, "training loss", "training loss (cf. Zhang et al. 2017, fig. 1a)", rows, "corruption",
        "memorised, not generalised", plot_dir, "random_labels.png", chance=chance)
