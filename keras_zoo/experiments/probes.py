"""Learned representations compared: what does each self-supervised objective put in its encoder?

Every registered encoder family among `ENCODER_MODELS` (autoencoder, denoising and masked autoencoder,
VAE, SimCLR and SimCLR with hard negatives, rotation prediction, IIC clustering, and the recurrent
forecaster, whose state after reading an image row by row is its representation) is trained with its own recipe on the same unlabelled images; its encoder is then frozen
and judged three ways on held-out images:

- linear-probe accuracy: a logistic regression on the frozen features, with all training labels and
  with 10 labels per class (how much label information the features expose linearly);
- alignment: mean squared distance between the normalised features of two augmented views of the
  same image (lower: invariant to the augmentations);
- uniformity: log mean Gaussian potential between features of different images (lower: spread
  over the sphere) — Wang & Isola 2020.

Raw pixels and each architecture with random weights are the baselines. Candidates that are not
registered in this installation are listed in the table's notes, never faked.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from keras_zoo import _validate
from keras_zoo.evaluation import to_numpy
from keras_zoo.experiments import _common

# Registry names, in the lecture's order.
ENCODER_MODELS = ("conv_autoencoder", "denoising_autoencoder", "masked_autoencoder", "vae", "simclr",
                  "simclr_hard", "rotation", "iic", "forecaster")

_PRESETS = {
    "small": {"epochs": 2, "probe_limit": 600, "labels_per_class": 10, "repeats": 2},
    # default: every model trains as long as its own recipe says (early stopping included).
    "default": {"epochs": None, "probe_limit": None, "labels_per_class": 10, "repeats": 5},
}


def frozen_encoder(model):
    """The frozen feature extractor of a trained model: its `encoder` attribute or layer."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        try:
            encoder = model.get_layer("encoder")
        except ValueError:
            raise ValueError(
                f"model {model.name!r} has no `encoder` attribute or layer to probe") from None
    return encoder


def features_of(encoder, images, batch_size: int = 256) -> np.ndarray:
    """An encoder's features of `images` as a 2-D array (a VAE's posterior mean; maps flattened)."""
    out = encoder.predict(images, verbose=0, batch_size=batch_size)
    if isinstance(out, dict):
        out = out["mean"]
    elif isinstance(out, (list, tuple)):
        out = out[0]  # a VAE encoder returns [mean, log_variance]: the posterior mean
    out = np.asarray(out, dtype="float32")
    return out.reshape(len(out), -1)


def _views(images, seed: int):
    """Two augmented views of each image: small random shifts and zooms (shared by all encoders)."""
    import keras

    h, w = images.shape[1:3]
    pixel = 1.0 / max(h, w)
    augment = keras.Sequential([
        keras.layers.RandomTranslation(1.5 * pixel, 1.5 * pixel, fill_mode="constant", seed=seed),
        keras.layers.RandomZoom(0.15, fill_mode="constant", seed=seed + 1),
    ])
    return (np.asarray(augment(images, training=True)), np.asarray(augment(images, training=True)))


def representations(data: str = "digits", *, size: str = "default", models=ENCODER_MODELS,
                    epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
                    verbose=0) -> _common.ResultTable:
    """Train each registered encoder family on `data` and compare the frozen representations.

    Args:
        data: an image source with labels for `keras_zoo.data.load_splits` (labels are used only by
            the probes, never for training the encoders).
        size: ``"small"`` (seconds; tests) or ``"default"``.
        models: registry names to compare (default `ENCODER_MODELS`); unregistered names are skipped
            with a note.
        epochs: training epochs for every model (default: 2 at small size, each recipe's own
            number at default size).
        seed: seeds the split, the training, the probes' label draws and the augmentations.
        plot_dir: when given, writes ``representations.png`` (probe accuracy per encoder, and the
            alignment-uniformity plane).
        verbose: passed to ``model.fit``.

    Returns:
        A `ResultTable` with one row per representation (``pixels``, then each model trained and
        with random weights): probe accuracy with all labels and with 10 per class, alignment,
        uniformity and training seconds.

    Example:
        >>> table = representations(size="small")
        >>> table.row("simclr")["probe_accuracy"]
    """
    import keras

    from keras_zoo import create_model, list_models, train
    from keras_zoo.data import load_splits
    from keras_zoo.evaluation import alignment_uniformity, linear_probe

    size = _common.check_size(size)
    models = tuple(models)
    if not models:
        raise ValueError(f"models must name at least one registry name, e.g. {list(ENCODER_MODELS)}")
    preset = _PRESETS[size]
    epochs = epochs if epochs is not None else preset["epochs"]
    if epochs is not None:
        epochs = _validate.positive_int("epochs", epochs)

    registered = set(list_models())
    present = [m for m in models if m in registered]
    missing = [m for m in models if m not in registered]
    if not present:
        raise ValueError(f"none of {list(models)} is registered; registered models: "
                         f"{sorted(registered)}")

    splits = load_splits(data, seed=seed)
    info = splits.info
    if not info.num_classes:
        raise ValueError(f"data {data!r} has no labels; the linear probes need them")
    x_train, y_train = to_numpy(splits.train, labels=True)
    x_test, y_test = to_numpy(splits.test, labels=True)
    if preset["probe_limit"]:
        x_train, y_train = x_train[:preset["probe_limit"]], y_train[:preset["probe_limit"]]
    view_a, view_b = _views(x_test, seed)
    budget = preset["labels_per_class"]

    def measure(name, trained, features, seconds):
        f_train, f_test, f_a, f_b = (features(x) for x in (x_train, x_test, view_a, view_b))
        probe_all = linear_probe(f_train, y_train, f_test, y_test, seed=seed)
        probe_few = linear_probe(f_train, y_train, f_test, y_test, labels_per_class=budget,
                                 repeats=preset["repeats"], seed=seed)
        geometry = alignment_uniformity(f_a, f_b, f_test)
        return {"representation": name, "trained": trained, "dimensions": f_test.shape[1],
                "probe_accuracy": probe_all["accuracy"],
                f"probe_accuracy_{budget}_per_class": probe_few["accuracy"],
                "alignment": geometry["alignment"], "uniformity": geometry["uniformity"],
                "epochs_run": 0, "train_seconds": seconds}

    rows = [measure("pixels", False, lambda x: x.reshape(len(x), -1), 0.0)]
    untrained_probes, duplicates = {}, []
    with tempfile.TemporaryDirectory(prefix="keras_zoo-representations-") as runs:
        for name in present:
            started = time.perf_counter()
            # The source, not `splits`: each recipe builds the pipeline its task needs (image
            # targets, noise or masks); the same seed gives the same train/test membership.
            result = train(name, data, epochs=epochs, run_dir=os.path.join(runs, name), seed=seed,
                           resume=False, verbose=verbose)
            seconds = round(time.perf_counter() - started, 1)
            encoder = frozen_encoder(result.model)
            row = measure(name, True, lambda x: features_of(encoder, x), seconds)
            row["epochs_run"] = len(next(iter(result.history.values()), []))
            rows.append(row)
            keras.utils.set_random_seed(seed + 1)
            untrained = frozen_encoder(create_model(name, input_shape=info.input_shape))
            probe = features_of(untrained, x_test[:64])
            # Models that differ only in their recipe (plain and denoising autoencoder) are the
            # same network before training: one baseline row is enough.
            twin = next((other for other, p in untrained_probes.items()
                         if p.shape == probe.shape and np.allclose(p, probe)), None)
            if twin is not None:
                duplicates.append(f"{name} with random weights is the same network as {twin}'s")
                continue
            untrained_probes[name] = probe
            rows.append(measure(f"{name} (random weights)", False,
                                lambda x: features_of(untrained, x), 0.0))

    schedule = f"{epochs} epochs each" if epochs else "as many epochs as each recipe says"
    notes = [f"{info.name}: encoders trained on {info.num_examples['train']} unlabelled images for "
             f"{schedule}, with their own recipes; probes fitted on {len(x_train)} labelled "
             f"training images and scored on {len(x_test)} test images, seed {seed}.",
             f"probe_accuracy_{budget}_per_class: mean over {preset['repeats']} draws of "
             f"{budget} labelled images per class.",
             "alignment and uniformity (Wang & Isola 2020) of L2-normalised features on the test "
             "images; views are random shifts (up to 1.5 pixels) and zooms (15 %). Lower is better "
             "for both."]
    if duplicates:
        notes.append("; ".join(duplicates) + " (not repeated).")
    if missing:
        notes.append(f"not registered in this installation, so not compared: {', '.join(missing)}.")
    table = _common.ResultTable(
        title=f"Representations on {info.name}: linear probe, alignment, uniformity",
        columns=["representation", "trained", "dimensions", "probe_accuracy",
                 f"probe_accuracy_{budget}_per_class", "alignment", "uniformity", "epochs_run",
                 "train_seconds"],
        rows=rows, notes=notes,
        settings={"data": data, "size": size, "models": list(present), "skipped": missing,
                  "epochs": epochs, "seed": seed})
    if plot_dir is not None:
        table.plots.append(_plot(rows, budget, plot_dir))
    return table


def _plot(rows, budget, plot_dir) -> str:
    plt = _common.pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4))
    names = [r["representation"] for r in rows]
    pos = np.arange(len(rows))
    colors = ["tab:gray" if not r["trained"] else "tab:blue" for r in rows]
    ax.barh(pos, [r["probe_accuracy"] for r in rows], color=colors, alpha=0.5, label="all labels")
    ax.barh(pos, [r[f"probe_accuracy_{budget}_per_class"] for r in rows], color=colors,
            label=f"{budget} labels per class")
    ax.set_yticks(pos)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("linear-probe accuracy (pale: all labels, dark: few labels)")
    ax.set_title("what a linear classifier can read off the frozen features")
    for r in rows:
        marker = "o" if r["trained"] else "x"
        bx.scatter(r["uniformity"], r["alignment"], marker=marker, s=40)
        bx.annotate(r["representation"], (r["uniformity"], r["alignment"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    bx.set_xlabel("uniformity (lower: more spread)")
    bx.set_ylabel("alignment (lower: views closer)")
    bx.set_title("alignment vs uniformity (Wang & Isola 2020)")
    fig.tight_layout()
    return _common.save_figure(fig, plot_dir, "representations.png")
