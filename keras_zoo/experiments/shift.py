"""Distribution shift: how classifiers hold up under common corruptions, and domain-adversarial
training (DANN) against source-only training on an MNIST-M-like target.

`domain_shift` trains each of a few registered classifiers on a labelled image set, measures its
accuracy under the common corruptions (Hendrycks & Dietterich) with the corruption error against the
first model (the lecture's MLP by default), then trains the `dann` network twice on the same images as
*source*, with a target made the way MNIST-M was made (each image blended with a random patch of a
colour picture, ``|patch - image|``): once with adaptation, once on the source only. The target's
labels only report (on its test split).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from keras_zoo.experiments import _common

_PRESETS = {
    "small": {"epochs": 3, "dann_epochs": 3, "models": ("mlp_lecture", "cnn_small"),
              "corruptions": ("gaussian_noise", "motion_blur", "fog", "contrast"), "severities": (1, 3, 5)},
    "default": {"epochs": 15, "dann_epochs": 30, "models": ("mlp_lecture", "cnn_small", "cnn_fast"),
                "corruptions": "all", "severities": (1, 2, 3, 4, 5)},
}


def _arrays(dataset):
    xs, ys = [], []
    for x, y in dataset:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def make_target(data: str = "digits", photos: str = "shapes", seed: int = 0):
    """``(source, target)`` numpy pairs ``(x, y)``: `data`'s images as RGB, and the same images each
    blended with a random patch of one of `photos`' colour images (`keras_zoo.data.domains.blend_arrays`).
    Both keep `data`'s labels (the target's only report)."""
    from keras_zoo.data import load_splits
    from keras_zoo.data.domains import blend_arrays

    source = load_splits(data, batch_size=256, validation_fraction=0.0, test_fraction=0.0, seed=seed,
                         color_mode="grayscale", cache="none")
    x, y = _arrays(source.train)
    h, w = x.shape[1], x.shape[2]
    pictures = load_splits(photos, targets="none", batch_size=256, validation_fraction=0.0, test_fraction=0.0,
                           seed=seed, color_mode="rgb", cache="none",
                           image_size=(max(h, 16) * 2, max(w, 16) * 2))
    pool = np.concatenate([batch.numpy() for batch in pictures.train])
    target = blend_arrays(x, pool, seed=seed)
    return (np.repeat(x, 3, axis=-1).astype("float32"), y), (target, y)


def domain_shift(data: str = "digits", *, size: str = "default", models=None, corruptions=None,
                 severities=None, photos: str = "shapes", epochs: int | None = None,
                 dann_epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
                 verbose=0) -> _common.ResultTable:
    """Corruption robustness of a few classifiers, and DANN against source-only on a blended target.

    Args:
        data: a labelled image source (default the built-in ``"digits"``).
        size: ``"small"`` (seconds; tests) or ``"default"``.
        models: registered classifiers to measure under corruptions; the first is the reference of
            the corruption error (default: the lecture's MLP, then convnets).
        corruptions, severities: what to measure (default: all 15 at 1-5; ``"small"``: one per
            family at 1, 3, 5).
        photos: a source of colour images whose patches make the target (default ``"shapes"``).
        epochs, dann_epochs: training epochs of the classifiers and of each DANN run.
        seed: seeds the splits, the corruptions, the blend and the weights.
        plot_dir: when given, writes ``corruptions.png`` (accuracy vs severity per family, one line
            per classifier) there.

    Returns:
        A `ResultTable`: one row per classifier (clean and mean corrupted accuracy, mCE and relative
        mCE against the first), then ``dann (source only)`` and ``dann`` (source and target test
        accuracy).

    Example:
        >>> table = domain_shift(size="small")
        >>> table.row("dann")["target_accuracy"] - table.row("dann (source only)")["target_accuracy"]
    """
    from keras_zoo import robustness
    from keras_zoo.training import evaluate, train

    size = _common.check_size(size)
    preset = _PRESETS[size]
    models = tuple(models or preset["models"])
    if not models:
        raise ValueError("models must name at least one registered classifier")
    corruptions = corruptions if corruptions is not None else preset["corruptions"]
    severities = severities if severities is not None else preset["severities"]
    epochs = _common.sized("epochs", epochs, preset)
    dann_epochs = _common.sized("dann_epochs", dann_epochs, preset)

    recipe = _common.pinned_classifier_recipe(epochs, batch_size=64)
    rows, reports = [], {}
    with tempfile.TemporaryDirectory(prefix="domain_shift-") as work:
        reference = None
        for name in models:
            trained = train(name, data, recipe=recipe, seed=seed, verbose=verbose, resume=False,
                                      run_dir=os.path.join(work, name))
            report = evaluate(trained.model, data, corruptions=corruptions, severities=severities,
                              reference=reference, seed=seed)
            reference = reference or trained.model
            reports[name] = report
            rows.append({"setting": name, "source_accuracy": report["clean_accuracy"],
                         "corrupted_accuracy": report["mean_accuracy"],
                         "mce": report.get("mce", 1.0), "relative_mce": report.get("relative_mce", 1.0),
                         "target_accuracy": None})
        source, target = make_target(data, photos, seed)
        arms = {}
        for label, adaptation in (("dann (source only)", False), ("dann", True)):
            result = train("dann", source, target=target, epochs=dann_epochs, seed=seed, verbose=verbose,
                                     resume=False, run_dir=os.path.join(work, label.replace(" ", "_")),
                                     num_classes=int(source[1].max()) + 1, adaptation=adaptation)
            arms[label] = result.metrics["target_accuracy"]
            rows.append({"setting": label, "source_accuracy": result.metrics["accuracy"],
                         "corrupted_accuracy": None, "mce": None, "relative_mce": None,
                         "target_accuracy": result.metrics["target_accuracy"]})
    table = _common.ResultTable(
        title=f"Distribution shift on {data}: common corruptions, and DANN on a target blended with {photos}",
        columns=["setting", "source_accuracy", "corrupted_accuracy", "mce", "relative_mce", "target_accuracy"],
        rows=rows,
        notes=[f"classifiers: {epochs} epochs of {recipe.optimizer} (lr {recipe.learning_rate}), seed {seed}; "
               f"accuracies on the test split; corruptions {report['corruptions']} at severities "
               f"{report['severities']}; mCE relative to {models[0]} (1.0 = as robust).",
               f"dann: the `dann` recipe for {dann_epochs} epochs on {data} as RGB (source) with the "
               f"blended images (target) as unlabelled data; target accuracy on the target's test split.",
               "the target's labels never reach training; its test split's images are never trained on."],
        settings={"data": data, "size": size, "models": list(models), "epochs": epochs,
                  "dann_epochs": dann_epochs, "photos": photos, "seed": seed},
        series={"corruptions": {name: r["family_accuracy"] for name, r in reports.items()},
                "dann_target_accuracy": arms})
    if plot_dir is not None:
        os.makedirs(plot_dir, exist_ok=True)
        table.plots.append(robustness.plot_corruptions(reports, os.path.join(plot_dir, "corruptions.png"),
                                                       title=f"accuracy under common corruptions ({data})"))
    return table
