"""The lecture's paradigms beyond autoencoding and contrast, each measured on held-out data.

- `clustering`: IIC (deep clustering without labels) against k-means on raw pixels and k-means on
  a random-weight encoder's features: clustering accuracy (Hungarian matching) and NMI.
- `forecasting`: a recurrent forecaster on images read row by row and on time series: one-step
  prediction error against copying the last step.

Their representations (the IIC encoder, the forecaster's state, the rotation-pretext encoder and
SimCLR with hard negatives) are compared with the others in `representations`.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from keras_zoo import _validate
from keras_zoo.evaluation import to_numpy
from keras_zoo.experiments import _common

_CLUSTER_PRESETS = {"small": {"epochs": 2}, "default": {"epochs": None}}
_FORECAST_PRESETS = {"small": {"epochs": 2}, "default": {"epochs": None}}
FORECAST_SOURCES = ("digits", "series")


def _epochs(epochs, preset):
    epochs = epochs if epochs is not None else preset["epochs"]
    return _validate.positive_int("epochs", epochs) if epochs is not None else None


def _kmeans(train_features, test_features, k: int, seed: int):
    from sklearn.cluster import KMeans

    km = KMeans(k, n_init=10, random_state=seed).fit(train_features)
    return km.predict(test_features)


def clustering(data: str = "digits", *, size: str = "default", model: str = "iic",
               epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
               verbose=0) -> _common.ResultTable:
    """Cluster `data` without labels and score the clusters against the held-out labels.

    Rows: k-means (k = number of classes) on raw pixels, k-means on the features of `model`'s
    encoder with random weights, `model` trained with its recipe (its own cluster assignments),
    and k-means on that trained encoder's features. k-means is fitted on the training images and
    assigns the test images; every score is on the test split.

    Args:
        data: a labelled image source (the labels are used only for scoring).
        size: ``"small"`` (2 epochs; tests) or ``"default"`` (the recipe's epochs).
        model: a registered clustering model (task ``clustering``).
        epochs: overrides the preset's epochs.
        plot_dir: when given, writes ``clusters.png``: test images grouped by their cluster.
    """
    import keras

    from keras_zoo import create_model, train
    from keras_zoo.factory import get_spec
    from keras_zoo.data import load_splits
    from keras_zoo.evaluation import clustering_scores
    from keras_zoo.experiments.probes import features_of, frozen_encoder

    size = _common.check_size(size)
    if get_spec(model).task != "clustering":
        raise ValueError(f"model {model!r} is a {get_spec(model).task} model; clustering needs a "
                         f"model of task 'clustering', such as 'iic'")
    epochs = _epochs(epochs, _CLUSTER_PRESETS[size])
    splits = load_splits(data, seed=seed)
    if not splits.info.num_classes:
        raise ValueError(f"data {data!r} has no labels to score the clusters against")
    k = splits.info.num_classes
    x_train, _ = to_numpy(splits.train, labels=True)
    x_test, y_test = to_numpy(splits.test, labels=True)

    def flat(x):
        return x.reshape(len(x), -1)

    rows = [{"method": "k-means on raw pixels", **clustering_scores(
        y_test, _kmeans(flat(x_train), flat(x_test), k, seed)), "train_seconds": 0.0}]
    keras.utils.set_random_seed(seed + 1)
    untrained = frozen_encoder(create_model(model, input_shape=splits.info.input_shape, clusters=k))
    rows.append({"method": f"k-means on {model} encoder (random weights)", **clustering_scores(
        y_test, _kmeans(features_of(untrained, x_train), features_of(untrained, x_test), k, seed)),
        "train_seconds": 0.0})
    with tempfile.TemporaryDirectory(prefix="keras_zoo-clustering-") as run_dir:
        started = time.perf_counter()
        result = train(model, data, epochs=epochs, run_dir=run_dir, seed=seed, resume=False,
                       verbose=verbose, clusters=k)
        seconds = round(time.perf_counter() - started, 1)
    trained = result.model
    assignments = trained.assign(x_test)
    rows.append({"method": f"{model} (trained, its own clusters)",
                 **clustering_scores(y_test, assignments), "train_seconds": seconds})
    encoder = frozen_encoder(trained)
    rows.append({"method": f"k-means on {model} encoder (trained)", **clustering_scores(
        y_test, _kmeans(features_of(encoder, x_train), features_of(encoder, x_test), k, seed)),
        "train_seconds": seconds})
    epochs_run = len(next(iter(result.history.values()), []))
    table = _common.ResultTable(
        title=f"Clustering {splits.info.name} without labels: accuracy (Hungarian matching) and NMI "
              "on the test split",
        columns=["method", "accuracy", "nmi", "clusters_used", "train_seconds"], rows=rows,
        notes=[f"{splits.info.name}: {len(x_train)} training images (labels unused), {len(x_test)} "
               f"test images, k = {k}, seed {seed}; {model} trained {epochs_run} epochs with its recipe."],
        settings={"data": data, "size": size, "model": model, "epochs": epochs, "seed": seed})
    if plot_dir is not None:
        table.plots.append(_cluster_grid(x_test, assignments, k, plot_dir))
    return table


def _cluster_grid(images, assignments, k: int, plot_dir: str, per_cluster: int = 12) -> str:
    plt = _common.pyplot()
    fig, axes = plt.subplots(k, per_cluster, figsize=(per_cluster * 0.6, k * 0.65))
    for c in range(k):
        members = images[assignments == c][:per_cluster]
        for j in range(per_cluster):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(members):
                ax.imshow(members[j].squeeze(), cmap="gray_r" if members[j].shape[-1] == 1 else None)
        axes[c, 0].set_title(f"{c}", fontsize=6, loc="left")
    fig.suptitle("test images by learned cluster (one row per cluster)", fontsize=9)
    return _common.save_figure(fig, plot_dir, "clusters.png")


def forecasting(*, size: str = "default", sources=FORECAST_SOURCES, model: str = "forecaster",
                epochs: int | None = None, seed: int = 0, plot_dir: str | None = None,
                verbose=0) -> _common.ResultTable:
    """Train the forecaster on each source and compare its one-step error with copying the last step.

    Sources: ``"digits"`` (each 8x8 image read as 8 rows of 8 values, top to bottom) and
    ``"series"`` (noisy periodic waves, 32 steps); any other built-in source can be named too.

    Args:
        size: ``"small"`` (2 epochs; tests) or ``"default"`` (the recipe's epochs).
        sources: data sources to forecast.
        model: a registered forecasting model.
        plot_dir: when given, writes ``forecasts.png``: continuations (rollouts) against the truth.

    Returns:
        One row per source: the model's mean squared one-step error on the test split, that of
        copying the last step, their ratio (the bar is <= 0.5), epochs run and seconds.
    """
    from keras_zoo import train
    from keras_zoo.factory import get_spec
    from keras_zoo.data import load_splits

    size = _common.check_size(size)
    sources = tuple(sources)
    if not sources:
        raise ValueError(f"sources must name at least one data source, e.g. {list(FORECAST_SOURCES)}")
    if get_spec(model).task != "forecasting":
        raise ValueError(f"model {model!r} is a {get_spec(model).task} model; forecasting needs a "
                         f"model of task 'forecasting', such as 'forecaster'")
    epochs = _epochs(epochs, _FORECAST_PRESETS[size])
    rows, examples = [], {}
    with tempfile.TemporaryDirectory(prefix="keras_zoo-forecasting-") as runs:
        for source in sources:
            started = time.perf_counter()
            result = train(model, source, epochs=epochs, run_dir=os.path.join(runs, str(len(rows))),
                           seed=seed, resume=False, verbose=verbose)
            seconds = round(time.perf_counter() - started, 1)
            splits = load_splits(source, targets="none", seed=seed)
            x_test = to_numpy(splits.test)
            model_mse, copy_mse = (float(np.mean(np.asarray(e))) for e in result.model.errors(x_test))
            rows.append({"source": source, "steps": int(result.model.steps),
                         "model_mse": model_mse, "copy_last_mse": copy_mse,
                         "ratio": model_mse / copy_mse,
                         "epochs_run": len(next(iter(result.history.values()), [])),
                         "train_seconds": seconds})
            half = result.model.steps // 2
            examples[source] = (x_test[:6], result.model.rollout(x_test[:6, :half], result.model.steps - half))
    table = _common.ResultTable(
        title="Future prediction: one-step mean squared error on the test split vs copying the last step",
        columns=["source", "steps", "model_mse", "copy_last_mse", "ratio", "epochs_run", "train_seconds"],
        rows=rows,
        notes=["digits are read as 8 rows of 8 values, top to bottom; series are noisy sine, triangle, "
               "square and sawtooth waves (32 steps). Errors count steps 1..T-1 (each predicted from "
               f"all the steps before it); seed {seed}."],
        settings={"size": size, "sources": list(sources), "model": model, "epochs": epochs, "seed": seed})
    if plot_dir is not None:
        table.plots.append(_forecast_plot(examples, plot_dir))
    return table


def _forecast_plot(examples: dict, plot_dir: str) -> str:
    plt = _common.pyplot()
    fig, axes = plt.subplots(len(examples), 6, figsize=(12, 2.2 * len(examples)), squeeze=False)
    for row, (source, (truth, continued)) in zip(axes, examples.items()):
        half = truth.shape[1] - continued.shape[1]
        for j, ax in enumerate(row):
            if truth.ndim == 4:  # images: the true upper half above the predicted lower half
                pair = np.concatenate([truth[j][:half], continued[j]], axis=0).squeeze(-1)
                gap = np.full((truth.shape[1], 1), np.nan)
                ax.imshow(np.concatenate([truth[j].squeeze(-1), gap, pair], axis=1), cmap="gray_r")
                ax.axhline(half - 0.5, color="tab:red", lw=1)
                ax.set_title("true | top true, bottom predicted", fontsize=6)
                ax.axis("off")
            else:
                ax.plot(truth[j, :, 0], color="k", lw=1, label="true")
                ax.plot(range(half, truth.shape[1]), continued[j, :, 0], color="tab:red", lw=1.5,
                        label="predicted")
                ax.axvline(half - 0.5, color="gray", ls="--", lw=0.8)
                ax.set_xticks([])
                if j == 0:
                    ax.legend(fontsize=6)
        row[0].set_ylabel(source)
    fig.suptitle("rollouts: the second half predicted from the first, step by step", fontsize=9)
    fig.tight_layout()
    return _common.save_figure(fig, plot_dir, "forecasts.png")
