"""The geometric view of a dense network: each hidden layer is a map of the input plane.

A small MLP is trained on a 2-D toy set (`moons`, `spirals`); the experiment then sends the data
and a regular grid of the input plane through every hidden layer. Each layer's activations are
projected to two dimensions (PCA) so the warped grid can be drawn, and a logistic-regression probe
measures how linearly separable the classes have become at that depth: the network's job is to bend
the plane until one straight line (the output layer) splits the classes.
"""

from __future__ import annotations

import numpy as np

from keras_zoo import _validate
from keras_zoo.evaluation import to_numpy
from keras_zoo.experiments import _common

DATASETS = ("moons", "spirals")

_PRESETS = {
    # Small: seconds on a laptop core, enough to bend the plane visibly.
    "small": {"count": 400, "epochs": 40, "width": 8, "depth": 2},
    "default": {"count": 1500, "epochs": 200, "width": 16, "depth": 3},
}


def _pca(reference: np.ndarray, k: int = 2):
    """Mean and top-k principal directions of `reference`, and the share of variance they hold."""
    mean = reference.mean(axis=0)
    centred = reference - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:k].T
    if basis.shape[1] < k:  # a layer narrower than k units: pad with zeros so plots still work
        basis = np.pad(basis, ((0, 0), (0, k - basis.shape[1])))
    var = s ** 2
    explained = float(var[:k].sum() / var.sum()) if var.sum() > 0 else 1.0
    return mean, basis, explained


def _grid_lines(lo, hi, lines: int = 13, points: int = 120):
    """Horizontal and vertical lines covering the box [lo, hi] of the input plane."""
    xs = np.linspace(lo[0], hi[0], lines)
    ys = np.linspace(lo[1], hi[1], lines)
    tx = np.linspace(lo[0], hi[0], points)
    ty = np.linspace(lo[1], hi[1], points)
    out = [np.stack([tx, np.full_like(tx, y)], axis=1) for y in ys]
    out += [np.stack([np.full_like(ty, x), ty], axis=1) for x in xs]
    return [line.astype("float32") for line in out]


def geometric_view(data: str = "spirals", *, size: str = "default", width: int | None = None,
                   depth: int | None = None, activation: str = "tanh", epochs: int | None = None,
                   seed: int = 0, plot_dir: str | None = None, verbose=0) -> _common.ResultTable:
    """Train `mlp_lecture` on a 2-D set and show what each hidden layer does to the input plane.

    Args:
        data: ``"moons"`` or ``"spirals"`` (built-in, offline).
        size: ``"small"`` (a few seconds; tests) or ``"default"`` (the lecture figure).
        width, depth: hidden units per layer and number of hidden layers (preset by `size`).
        activation: hidden activation; ``"tanh"`` keeps each layer a smooth map, so the grid bends
            instead of folding, which makes the pictures easier to read.
        epochs: training epochs (preset by `size`).
        seed: seeds the data, the split and the initial weights.
        plot_dir: when given, writes ``geometric_view_<data>.png`` there.
        verbose: passed to ``model.fit``.

    Returns:
        A `ResultTable` with one row per representation (``input``, ``layer 1`` ... ``layer N``,
        then ``network``): its width, the linear-probe accuracy on train and test, and the share of
        variance the 2-D picture shows.

    Example:
        >>> table = geometric_view("moons", size="small", plot_dir="plots")
        >>> table.row("network")["test_accuracy"]
    """
    import keras

    from keras_zoo import create_model, get_recipe
    from keras_zoo.data import load_splits
    from keras_zoo.evaluation import linear_probe

    size = _common.check_size(size)
    _validate.one_of("data", data, DATASETS)
    preset = dict(_PRESETS[size])
    width, depth = _common.sized("width", width, preset), _common.sized("depth", depth, preset)
    epochs = _common.sized("epochs", epochs, preset)

    recipe = get_recipe("classifier").replace(epochs=epochs, early_stopping_patience=None,
                                              learning_rate=1e-2, batch_size=32)
    splits = load_splits(f"{data}:count={preset['count']}", batch_size=recipe.batch_size,
                         validation_fraction=0.0, test_fraction=0.25, seed=seed)
    x_train, y_train = to_numpy(splits.train, labels=True)
    x_test, y_test = to_numpy(splits.test, labels=True)

    keras.utils.set_random_seed(seed)
    model = create_model("mlp_lecture", input_shape=(2,), num_classes=splits.info.num_classes,
                         width=width, depth=depth, activation=activation)
    recipe.compile(model, steps_per_epoch=recipe.steps_per_epoch(len(x_train)))
    model.fit(splits.train, epochs=epochs, shuffle=False, verbose=verbose)
    net_train = float(model.evaluate(x_train, y_train, verbose=0, return_dict=True)["accuracy"])
    net_test = float(model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"])

    # Each hidden layer's output after its activation (mlp builders name them f"{activation}_{i}").
    hidden = [model.get_layer(f"{activation}_{i}").output for i in range(depth)]
    features = keras.Model(model.inputs, hidden, name="hidden_layers")

    def representations(x):
        outs = features.predict(x, verbose=0, batch_size=1024)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [np.asarray(x)] + [np.asarray(o) for o in outs]

    reps_train, reps_test = representations(x_train), representations(x_test)
    rows, projections = [], []
    for i, (a, b) in enumerate(zip(reps_train, reps_test)):
        # The same probe scored on the points it was fitted on, then on held-out points.
        probe_train = linear_probe(a, y_train, a, y_train, seed=seed)["accuracy"]
        probe_test = linear_probe(a, y_train, b, y_test, seed=seed)["accuracy"]
        if i == 0 and a.shape[1] == 2:
            # The input plane is drawn as it is, unrotated.
            mean, basis, explained = np.zeros(2, "float32"), np.eye(2, dtype="float32"), 1.0
        else:
            mean, basis, explained = _pca(a)
        projections.append((mean, basis))
        rows.append({"representation": "input" if i == 0 else f"layer {i}", "width": a.shape[1],
                     "probe_train_accuracy": probe_train, "probe_test_accuracy": probe_test,
                     "variance_shown_2d": explained})
    rows.append({"representation": "network", "width": int(splits.info.num_classes),
                 "probe_train_accuracy": net_train, "probe_test_accuracy": net_test,
                 "variance_shown_2d": float("nan")})

    table = _common.ResultTable(
        title=f"Geometric view: mlp_lecture (width {width}, depth {depth}, {activation}) on {data}",
        columns=["representation", "width", "probe_train_accuracy", "probe_test_accuracy",
                 "variance_shown_2d"],
        rows=rows,
        notes=[f"{len(x_train)} train / {len(x_test)} test points, {epochs} epochs, seed {seed}.",
               "probe = logistic regression on that layer's activations; the 'network' row is the "
               "trained network's own accuracy.",
               "variance_shown_2d = share of the layer's variance in the 2-D PCA picture."],
        settings={"data": data, "size": size, "width": width, "depth": depth,
                  "activation": activation, "epochs": epochs, "seed": seed})

    if plot_dir is not None:
        table.plots.append(_plot(model, representations, projections, x_train, y_train, rows,
                                 data, plot_dir))
    return table


def _plot(model, representations, projections, x, y, rows, data, plot_dir) -> str:
    plt = _common.pyplot()
    lo, hi = x.min(axis=0) - 0.25, x.max(axis=0) + 0.25
    lines = _grid_lines(lo, hi)
    line_reps = [representations(line) for line in lines]  # per line: [input, layer1, ...]
    n_rep = len(projections)
    fig, axes = plt.subplots(1, n_rep + 1, figsize=(3.2 * (n_rep + 1), 3.3))
    colors = np.array(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])
    for k, ax in enumerate(axes[:n_rep]):
        mean, basis = projections[k]
        for reps in line_reps:
            p = (reps[k] - mean) @ basis
            ax.plot(p[:, 0], p[:, 1], color="0.75", lw=0.6)
        pts = (representations(x)[k] - mean) @ basis
        ax.scatter(pts[:, 0], pts[:, 1], c=colors[y % len(colors)], s=4)
        r = rows[k]
        ax.set_title(f"{r['representation']} (probe {r['probe_test_accuracy']:.2f})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    # Decision regions of the whole network, drawn back in the input plane.
    ax = axes[-1]
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype("float32")
    pred = np.argmax(model.predict(grid, verbose=0, batch_size=4096), axis=1).reshape(gx.shape)
    ax.contourf(gx, gy, pred, levels=np.arange(pred.max() + 2) - 0.5, alpha=0.25,
                colors=list(colors[:pred.max() + 1]))
    ax.scatter(x[:, 0], x[:, 1], c=colors[y % len(colors)], s=4)
    ax.set_title(f"decision boundary (test acc {rows[-1]['probe_test_accuracy']:.2f})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.suptitle(f"{data}: the input plane as each hidden layer sees it (2-D PCA)", fontsize=10)
    fig.tight_layout()
    return _common.save_figure(fig, plot_dir, f"geometric_view_{data}.png")
