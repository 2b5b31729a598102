"""Evaluation of the generative and self-supervised models.

- VAE: held-out negative ELBO in nats per example and reconstruction error (`vae_scores`), beside
  the best model that ignores z, an independent per-pixel likelihood fitted in closed form
  (`independent_pixel_nll`).
- GAN: Frechet distance between classifier features of generated and held-out images, beside
  an untrained generator's and the real train-vs-held-out floor (`gan_report`), and a sample grid
  PNG (`save_image_grid`).
- SimCLR: linear-probe accuracy of the frozen encoder beside a randomly initialised encoder of the
  same architecture and raw pixels, with N labels per class and with all labels, plus alignment
  and uniformity of the embeddings (Wang & Isola 2020) (`simclr_report`).

Functions take numpy arrays or `tf.data` datasets (see `to_numpy`).
"""

from __future__ import annotations

import math

import numpy as np

from keras_zoo._io import atomic_path


# --------------------------------------------------------------------------- data


def to_numpy(data, labels: bool = False):
    """Images (and labels) as numpy arrays from an array, an ``(x, y)`` tuple or a `tf.data` dataset.

    Args:
        data: ``x``, ``(x, y)``, or a dataset yielding ``x`` or ``(x, y)`` batches.
        labels: also return the labels (the dataset or tuple must carry them).

    Returns:
        ``x`` or ``(x, y)``.
    """
    if isinstance(data, np.ndarray):
        if labels:
            raise ValueError("labels=True needs (x, y) arrays or a dataset of (x, y) batches")
        return data
    if isinstance(data, tuple) and len(data) == 2 and not hasattr(data, "element_spec"):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        return (x, y) if labels else x
    if not hasattr(data, "as_numpy_iterator"):
        raise ValueError(f"expected an array, an (x, y) tuple or a tf.data.Dataset, got {type(data).__name__}")
    xs, ys = [], []
    for batch in data.as_numpy_iterator():
        if isinstance(batch, tuple):
            xs.append(batch[0])
            if labels:
                if len(batch) < 2:
                    raise ValueError("labels=True but the dataset yields images only (use targets='label')")
                ys.append(batch[1])
        else:
            if labels:
                raise ValueError("labels=True but the dataset yields images only (use targets='label')")
            xs.append(batch)
    x = np.concatenate(xs, axis=0)
    return (x, np.concatenate(ys, axis=0)) if labels else x


def model_outputs(model, x) -> dict:
    """A Keras model's inference outputs (``training=False``) as a dict of numpy arrays: a dict
    output keeps its keys, a single output is ``"outputs"``, a list's items ``"outputs_0"``, ...."""
    out = model(x, training=False)
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {f"outputs_{i}": np.asarray(v) for i, v in enumerate(out)}
    return {"outputs": np.asarray(out)}


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


# --------------------------------------------------------------------------- VAE


def vae_scores(model, images, *, num_samples: int = 10, batch_size: int = 256, seed: int = 0,
               refine_steps: int = 0, refine_learning_rate: float = 1e-2) -> dict:
    """Held-out ELBO terms of a VAE, in nats per example (beta = 1, whatever beta it trained with).

    The expectation over q(z|x) is estimated with `num_samples` posterior samples per example;
    the KL is exact. By default q is the encoder's output (the amortised ELBO). With
    ``refine_steps > 0`` each example's Gaussian q is then optimised by Adam on its own ELBO,
    starting from the encoder's output: still an ELBO of the same model (a lower bound on its
    log-likelihood), without the encoder's amortisation gap (Cremer et al. 2018).

    Args:
        model: a `VariationalAutoencoder`.
        images: held-out images in [0, 1] (array or dataset).
        num_samples: posterior samples per example.
        seed: seed of the posterior samples.
        refine_steps: per-example optimisation steps of q (0: the encoder's q).
        refine_learning_rate: Adam step size of that optimisation.

    Returns:
        ``{"negative_elbo", "reconstruction_nll", "kl", "reconstruction_mse", "reconstruction_mae",
        "num_examples"}``: the first three in nats per example, the errors per pixel between the
        images and `model.reconstruct` (decoded posterior mean of the encoder).
    """
    import keras

    x = to_numpy(images).astype("float32")
    nll_sum, kl_sum, se_sum, ae_sum = 0.0, 0.0, 0.0, 0.0
    generator = keras.random.SeedGenerator(seed)
    for part in _batches(len(x), batch_size):
        batch = x[part]
        mean, log_var = model.encode(batch)
        if refine_steps:
            mean, log_var = _refine_posterior(model, batch, mean, log_var, refine_steps,
                                              refine_learning_rate, generator)
        nll = np.zeros(len(batch))
        for _ in range(num_samples):
            sample_nll, kl = model.posterior_terms(batch, mean, log_var, seed=generator)
            nll += np.asarray(sample_nll, dtype="float64")
        nll_sum += float(np.sum(nll / num_samples))
        kl_sum += float(np.sum(np.asarray(kl, dtype="float64")))
        err = np.asarray(model.reconstruct(batch), dtype="float64") - batch
        se_sum += float(np.sum(err ** 2))
        ae_sum += float(np.sum(np.abs(err)))
    n, pixels = len(x), x[0].size
    return {"negative_elbo": (nll_sum + kl_sum) / n, "reconstruction_nll": nll_sum / n,
            "kl": kl_sum / n, "reconstruction_mse": se_sum / (n * pixels),
            "reconstruction_mae": ae_sum / (n * pixels), "num_examples": n}


def _refine_posterior(model, images, mean, log_var, steps, learning_rate, generator):
    """Per-example Adam steps on (mean, log_var) of q to lower each example's negative ELBO."""
    import keras
    import tensorflow as tf

    mu = keras.Variable(np.asarray(mean, dtype="float32"), name="refined_mean")
    lv = keras.Variable(np.asarray(log_var, dtype="float32"), name="refined_log_variance")
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([mu, lv])
    images = tf.constant(images)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            nll, kl = model.posterior_terms(images, mu, lv, seed=generator)
            # A sum: every example's q follows the gradient of its own ELBO only.
            loss = tf.reduce_sum(nll + kl)
        optimizer.apply(tape.gradient(loss, [mu, lv]), [mu, lv])

    for _ in range(int(steps)):
        step()
    return mu.value, lv.value


def independent_pixel_nll(train_images, test_images, likelihood: str = "bernoulli", levels: int = 256,
                          smoothing=(1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0)) -> dict:
    """Held-out NLL (nats per example) of the best model whose output ignores z.

    Each pixel gets its own distribution, fitted to the training images in closed form: the mean
    intensity (Bernoulli) or the histogram of its `levels` values (categorical), with additive
    smoothing so that a value unseen in training is not impossible. The smoothing strength is
    picked from `smoothing` on the held-out images themselves, which favours this baseline.

    Args:
        train_images, test_images: images in [0, 1].
        likelihood: ``"bernoulli"`` or ``"categorical"`` (the VAE's likelihood, for a fair comparison).
        levels: intensity levels of the categorical likelihood.
        smoothing: candidate pseudo-counts.

    Returns:
        ``{"nll": nats per example, "smoothing": the pseudo-count used, "likelihood", "levels"}``.
    """
    if likelihood not in ("bernoulli", "categorical"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'categorical', got {likelihood!r}")
    train, test = to_numpy(train_images).astype("float64"), to_numpy(test_images).astype("float64")
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    train, test = np.clip(train, 0.0, 1.0), np.clip(test, 0.0, 1.0)
    n = len(train)
    best = None
    for alpha in smoothing:
        if likelihood == "bernoulli":
            p = (train.sum(axis=0) + alpha) / (n + 2 * alpha)
            nll = -(test * np.log(p) + (1 - test) * np.log1p(-p)).sum(axis=1).mean()
        else:
            q_train = np.rint(train * (levels - 1)).astype(int)
            q_test = np.rint(test * (levels - 1)).astype(int)
            counts = np.stack([(q_train == k).sum(axis=0) for k in range(levels)], axis=1) + alpha
            log_p = np.log(counts / counts.sum(axis=1, keepdims=True))  # (pixels, levels)
            nll = -log_p[np.arange(q_test.shape[1])[None, :], q_test].sum(axis=1).mean()
        if best is None or nll < best[0]:
            best = (float(nll), float(alpha))
    return {"nll": best[0], "smoothing": best[1], "likelihood": likelihood, "levels": int(levels)}


# --------------------------------------------------------------------------- GAN


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``
    """
    a = np.asarray(features_a, dtype="float64")
    b = np.asarray(features_b, dtype="float64")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with the same d, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD
    # matrix: stable even when ReLU features leave the covariances singular.
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_covmean = float(np.sum(np.sqrt(np.clip(inner, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_covmean)


def classifier_features(classifier, images, layer: str = "pool", batch_size: int = 256) -> np.ndarray:
    """Activations of `classifier`'s layer `layer` (a keras_zoo classifier's pooled features)."""
    import keras

    try:
        output = classifier.get_layer(layer).output
    except ValueError:
        raise ValueError(f"classifier {classifier.name!r} has no layer named {layer!r}") from None
    inputs = classifier.inputs[0] if len(classifier.inputs) == 1 else classifier.inputs
    extractor = keras.Model(inputs, output)
    x = to_numpy(images).astype("float32")
    return np.concatenate([np.asarray(extractor(x[part], training=False)) for part in _batches(len(x), batch_size)])


def generate_images(gan, num_images: int, *, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """`num_images` images from a GAN (or VAE) with standard-normal noise drawn from `seed`."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((num_images, gan.latent_dim)).astype("float32")
    return np.concatenate([np.asarray(gan.generate(noise[part])) for part in _batches(num_images, batch_size)])


def untrained_copy(model, seed: int = 0):
    """A freshly initialised model of the same class and configuration (no trained weights)."""
    import keras

    keras.utils.set_random_seed(seed)
    return type(model).from_config(model.get_config())


def gan_report(gan, classifier, train_images, test_images, *, num_samples: int | None = None,
               seed: int = 0, layer: str = "pool") -> dict:
    """Frechet distances in the feature space of a classifier trained on the same data.

    Inception weights are not available offline, so the features come from a keras_zoo
    classifier trained on the GAN's own data (the usual "FID with a domain classifier"); the
    numbers are comparable with each other, not with published FIDs.

    Args:
        gan: a trained GAN (anything with `generate` and `latent_dim`).
        classifier: a trained classifier with a pooled-feature layer `layer`.
        train_images, test_images: the real training and held-out images.
        num_samples: generated images per distance (default: as many as training images, so the
            generated sets and the real floor have the same sample size).
        seed: seed of the noise and of the untrained generator's weights.

    Returns:
        ``{"fd_generator", "fd_untrained", "fd_floor", "improvement", "num_samples"}``: distances
        to the held-out features of the trained generator's samples, of an untrained generator's
        samples (same architecture), and of the real training images (the floor); improvement is
        ``fd_untrained / fd_generator``.
    """
    train = to_numpy(train_images)
    test_features = classifier_features(classifier, test_images, layer)
    n = int(num_samples or len(train))
    trained = classifier_features(classifier, generate_images(gan, n, seed=seed), layer)
    untrained = untrained_copy(gan, seed=seed + 1)
    random_features = classifier_features(classifier, generate_images(untrained, n, seed=seed), layer)
    floor = frechet_distance(classifier_features(classifier, train, layer), test_features)
    fd_generator = frechet_distance(trained, test_features)
    fd_untrained = frechet_distance(random_features, test_features)
    return {"fd_generator": fd_generator, "fd_untrained": fd_untrained, "fd_floor": floor,
            "improvement": fd_untrained / max(fd_generator, 1e-12), "num_samples": n}


def save_image_grid(images, path: str, columns: int = 8, cell: int = 48) -> str:
    """Write images in [0, 1] as one PNG grid (atomically); each image is scaled up to `cell` pixels.

    Args:
        images: ``(n, h, w, c)`` with c = 1 or 3.
        path: the ``.png`` to write.
        columns: images per row.
        cell: side of each image in the grid, in pixels (nearest-neighbour scaling keeps pixels sharp).
    """
    from PIL import Image

    x = np.clip(to_numpy(images).astype("float32"), 0.0, 1.0)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (n, h, w, 1 or 3), got shape {x.shape}")
    n, h, w, c = x.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    scale = max(1, cell // max(h, w))
    pad = 2
    canvas = np.ones((rows * (h * scale + pad) + pad, columns * (w * scale + pad) + pad, c), dtype="float32")
    for i, image in enumerate(x):
        r, col = divmod(i, columns)
        big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        top, left = pad + r * (h * scale + pad), pad + col * (w * scale + pad)
        canvas[top:top + h * scale, left:left + w * scale] = big
    pixels = (canvas * 255).round().astype("uint8")
    picture = Image.fromarray(pixels[..., 0] if c == 1 else pixels, mode="L" if c == 1 else "RGB")
    with atomic_path(path, suffix=".png") as tmp:
        picture.save(tmp, format="PNG")
    return path


# --------------------------------------------------------------------------- SimCLR


def encoder_features(encoder, images, batch_size: int = 256) -> np.ndarray:
    """Outputs of `encoder` (inference mode) on images, batched."""
    x = to_numpy(images).astype("float32")
    return np.concatenate([np.asarray(encoder(x[part], training=False)) for part in _batches(len(x), batch_size)])


def linear_probe(train_features, train_labels, test_features, test_labels, *,
                 labels_per_class: int | None = None, repeats: int = 10, seed: int = 0,
                 regularization: float = 1.0) -> dict:
    """Accuracy of a linear classifier (logistic regression on standardised features) on frozen features.

    Args:
        train_features, train_labels: the labelled pool.
        test_features, test_labels: held-out evaluation set.
        labels_per_class: draw this many labelled examples per class from the pool (``None``: use
            all); the draw is repeated `repeats` times with different seeds.
        regularization: inverse L2 strength ``C`` of the logistic regression (same for every probe).

    Returns:
        ``{"accuracy": mean, "std": standard deviation over draws, "repeats", "labels_per_class"}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr = np.asarray(train_features, dtype="float64").reshape(len(train_features), -1)
    xte = np.asarray(test_features, dtype="float64").reshape(len(test_features), -1)
    ytr, yte = np.asarray(train_labels).ravel(), np.asarray(test_labels).ravel()
    if labels_per_class is not None:
        counts = np.bincount(ytr)
        if labels_per_class > counts[counts > 0].min():
            raise ValueError(f"labels_per_class={labels_per_class} exceeds the smallest class "
                             f"({counts[counts > 0].min()} labelled examples)")
    draws = repeats if labels_per_class is not None else 1
    scores = []
    for r in range(draws):
        if labels_per_class is None:
            idx = np.arange(len(ytr))
        else:
            rng = np.random.default_rng(seed + r)
            idx = np.concatenate([rng.choice(np.flatnonzero(ytr == k), labels_per_class, replace=False)
                                  for k in np.unique(ytr)])
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=5000))
        probe.fit(xtr[idx], ytr[idx])
        scores.append(float(np.mean(probe.predict(xte) == yte)))
    return {"accuracy": float(np.mean(scores)), "std": float(np.std(scores)), "repeats": draws,
            "labels_per_class": labels_per_class}


def alignment_uniformity(view_a, view_b, embeddings=None, *, alpha: float = 2.0, t: float = 2.0) -> dict:
    """Alignment and uniformity of L2-normalised embeddings (Wang & Isola 2020); lower is better for both.

    Args:
        view_a, view_b: ``(n, d)`` embeddings of two augmented views of the same n images.
        embeddings: ``(m, d)`` embeddings of (unaugmented) images for the uniformity term
            (default: `view_a`).

    Returns:
        ``{"alignment": E ||f(x) - f(x+)||^alpha, "uniformity": log E exp(-t ||f(x) - f(y)||^2)}``.
    """

    def unit(v):
        v = np.asarray(v, dtype="float64")
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    a, b = unit(view_a), unit(view_b)
    e = unit(view_a if embeddings is None else embeddings)
    alignment = float(np.mean(np.linalg.norm(a - b, axis=1) ** alpha))
    sq = np.maximum(np.sum(e ** 2, 1)[:, None] + np.sum(e ** 2, 1)[None, :] - 2 * e @ e.T, 0.0)
    upper = sq[np.triu_indices(len(e), k=1)]
    uniformity = float(np.log(np.mean(np.exp(-t * upper))))
    return {"alignment": alignment, "uniformity": uniformity}


def simclr_report(model, train, test, *, labels_per_class=(10, None), repeats: int = 10,
                  seed: int = 0) -> dict:
    """Linear probes of the frozen SimCLR encoder vs a random-init encoder vs raw pixels, plus geometry.

    Args:
        model: a trained `SimCLR` model.
        train, test: labelled data: ``(x, y)`` arrays or datasets of ``(x, y)`` batches.
        labels_per_class: label budgets to probe with (``None`` = all training labels).
        repeats: draws of the labelled subset per budget.
        seed: seed of the draws, the augmentations and the random encoder.

    Returns:
        ``{"probe": {budget: {"simclr", "random_init", "pixels"}}, "geometry": {"simclr",
        "random_init"}}`` where budgets are keyed ``"10_per_class"`` / ``"all"``, each probe entry is
        a `linear_probe` result, and geometry holds `alignment_uniformity` on held-out images.
    """
    xtr, ytr = to_numpy(train, labels=True)
    xte, yte = to_numpy(test, labels=True)
    random_model = untrained_copy(model, seed=seed + 1)
    feats = {
        "simclr": (encoder_features(model.encoder, xtr), encoder_features(model.encoder, xte)),
        "random_init": (encoder_features(random_model.encoder, xtr),
                        encoder_features(random_model.encoder, xte)),
        "pixels": (xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)),
    }
    probe = {}
    for budget in labels_per_class:
        key = "all" if budget is None else f"{budget}_per_class"
        probe[key] = {name: linear_probe(f_tr, ytr, f_te, yte, labels_per_class=budget,
                                         repeats=repeats, seed=seed)
                      for name, (f_tr, f_te) in feats.items()}
    import keras

    keras.utils.set_random_seed(seed)
    view_a, view_b = model.views(xte.astype("float32"))
    geometry = {}
    for name, m in (("simclr", model), ("random_init", random_model)):
        geometry[name] = alignment_uniformity(np.asarray(m.embed(view_a)), np.asarray(m.embed(view_b)),
                                              np.asarray(m.embed(xte.astype("float32"))))
    return {"probe": probe, "geometry": geometry}


def clustering_scores(labels, assignments) -> dict:
    """Clustering accuracy and normalised mutual information of cluster ids against true labels.

    Accuracy is the fraction of examples whose cluster maps to their label under the best
    one-to-one matching of clusters to labels (the Hungarian algorithm,
    `scipy.optimize.linear_sum_assignment`; clusters left without a label count as wrong). NMI is
    scikit-learn's `normalized_mutual_info_score` (arithmetic mean normalisation).

    Returns:
        ``{"accuracy": ..., "nmi": ..., "clusters_used": ...}``.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import normalized_mutual_info_score

    labels = np.asarray(labels).reshape(-1).astype("int64")
    assignments = np.asarray(assignments).reshape(-1).astype("int64")
    if labels.shape != assignments.shape or labels.size == 0:
        raise ValueError(f"labels and assignments must be non-empty and of equal length, got "
                         f"{labels.size} and {assignments.size}")
    if labels.min() < 0 or assignments.min() < 0:
        raise ValueError("labels and cluster ids must be non-negative integers")
    counts = np.zeros((assignments.max() + 1, labels.max() + 1), dtype="int64")
    np.add.at(counts, (assignments, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {"accuracy": float(counts[rows, cols].sum() / labels.size),
            "nmi": float(normalized_mutual_info_score(labels, assignments)),
            "clusters_used": int(len(np.unique(assignments)))}
