"""`train` and `evaluate`: a recipe applied to a registered model and a data source.

One run directory holds everything a run leaves behind: `model.keras` (the best epoch's weights when
the recipe has early stopping, else the last epoch's), `best.keras`
(written during training), `metrics.json` (held-out metrics), `curves.png`, `log.csv`,
`tensorboard/`, `backup/` while the run is unfinished (so the same command resumes it), and `export/`
when asked for. Under a multi-worker strategy the chief alone writes it; the other workers keep
their files in a temporary directory of their own, removed when the run ends.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import re
import time

import keras
import tensorflow as tf

from keras_zoo import distribute, factory, registry, weights
from keras_zoo._io import atomic_path, atomic_write_text
from keras_zoo.data import Splits, load_splits
from keras_zoo.data.corruptions import make_corruption
from keras_zoo.recipes import Recipe, get_recipe
from keras_zoo.recipes.callbacks import NanGuard, default_callbacks
from keras_zoo.recipes.precision import choose_precision
from keras_zoo.registry import ModelSpec

log = logging.getLogger("keras_zoo")


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained model: the best epoch's weights when the recipe has early stopping
            (restored by it), the last epoch's when it has none (``simclr``, ``dcgan``, ``iic``...).
        history: per-epoch logs of this invocation, ``{"loss": [...], "val_loss": [...], ...}``.
        metrics: held-out (test split) metrics, ``{"loss": ..., "accuracy": ...}``.
        run_dir: where the checkpoint, logs, curves and metrics were written.
        info: the `DatasetInfo` of the data it trained on.
        export_path: the SavedModel directory, when `export=True`.
        summary: the run summary written to ``run_dir/metrics.json`` (recipe, epochs run, training
            seconds, held-out metrics, versions).
    """

    model: keras.Model
    history: dict
    metrics: dict
    run_dir: str
    info: object
    export_path: str | None = None
    summary: dict = dataclasses.field(default_factory=dict)


def _slug(value) -> str:
    text = os.path.basename(os.path.normpath(str(value))) if not isinstance(value, tuple) else "numpy"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "data"


def _resolve(model_or_name, recipe):
    """(spec or None, recipe) for a registry name, a resolved `ModelSpec` or an already-built model."""
    if isinstance(model_or_name, ModelSpec):
        spec = model_or_name
    elif isinstance(model_or_name, str):
        spec = factory.get_spec(model_or_name)
    else:
        try:
            spec = factory.get_spec(model_or_name.name)
        except KeyError:
            spec = None
    if recipe is None:
        if spec is None:
            raise ValueError(
                f"model {getattr(model_or_name, 'name', model_or_name)!r} is not registered, so it "
                "has no default recipe: pass recipe= (see keras_zoo.list_recipes())")
        recipe = spec.recipe
    return spec, get_recipe(recipe)


def _data_options(recipe: Recipe, data_options: dict | None) -> dict:
    """`data_options` with the recipe's corruption spec (or a spec string given there) made callable."""
    options = dict(data_options or {})
    spec = options.pop("corruption", recipe.corruption)
    options["corruption"] = make_corruption(spec) if isinstance(spec, str) else spec
    return options


def _load_data(data, recipe: Recipe, seed: int, data_options: dict | None) -> Splits:
    if isinstance(data, Splits):
        return data
    return load_splits(data, targets=recipe.targets, batch_size=recipe.batch_size,
                       augment=recipe.augment, seed=seed, **_data_options(recipe, data_options))


def model_arguments(spec, info, recipe: Recipe, model_overrides: dict) -> dict:
    """`create_model` keyword arguments that fit `spec`'s model to data described by `info`.

    The input shape, the class count (for label and mask targets, where the builder takes one) and
    the pixel levels (for builders with a `levels` argument: a VAE's discrete likelihood models
    the values the data take, 17 for digits and 256 for 8-bit images) come from the data unless
    `model_overrides` sets them.
    """
    arguments = {"input_shape": info.input_shape, "num_classes": None}
    if spec.accepts_num_classes and info.num_classes and recipe.targets in ("label", "mask"):
        arguments["num_classes"] = info.num_classes
    if "levels" in spec.defaults and getattr(info, "levels", None):
        arguments["levels"] = info.levels
    arguments.update(model_overrides)
    return arguments


def build_for_data(spec, info, recipe: Recipe, model_overrides: dict):
    """A fresh model of `spec` fitted to the data (see `model_arguments`; `info=None`: the
    registered defaults) under the recipe's precision policy (`choose_precision`: "auto" by measurement
    for the model's family, float32 where the machine would only emulate it), restored afterwards."""
    arguments = model_arguments(spec, info, recipe, model_overrides) if info is not None else model_overrides
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(choose_precision(recipe.precision, spec.family)[0])
    try:
        return registry.build_model(spec, **arguments)
    finally:
        keras.config.set_dtype_policy(previous)


def _build(model_or_name, spec, recipe: Recipe, info, model_overrides: dict):
    if isinstance(model_or_name, keras.Model):
        if model_overrides:
            raise ValueError(f"model overrides {sorted(model_overrides)} need a model name, not a built model")
        return model_or_name
    return build_for_data(spec, info, recipe, model_overrides)


def _check_strategy(model, strategy) -> None:
    """Refuse a model built outside the strategy's scope (its variables would live on one device)."""
    if strategy is not None and model.weights and not strategy.extended.variable_created_in_scope(
            getattr(model.weights[0], "value", model.weights[0])):
        raise ValueError(f"model {model.name!r} was built outside the scope of the {type(strategy).__name__} "
                         "it is to train under: build it inside `with strategy.scope():` and pass that "
                         "strategy object as strategy=")


def _check_class_count(model, info, recipe) -> None:
    """Refuse data with more classes than the model has outputs, before `fit` (where the error
    would come from inside the loss, naming no class)."""
    outputs = getattr(model, "outputs", None) or []
    if recipe.targets not in ("label", "mask") or not info.num_classes or len(outputs) != 1:
        return
    units = outputs[0].shape[-1]
    if units is not None and units > 1 and info.num_classes > units:
        raise ValueError(f"the data {info.name!r} has {info.num_classes} classes (ids 0..{info.num_classes - 1}) "
                         f"but model {model.name!r} outputs {units}; build it with num_classes={info.num_classes}")


def train(model_or_name, data, recipe=None, *, epochs: int | None = None,
          batch_size: int | None = None, learning_rate: float | None = None,
          run_dir: str | None = None, seed: int = 0, export: bool = False, resume: bool = True,
          callbacks=(), data_options: dict | None = None, verbose="auto", strategy=None,
          target=None, **model_overrides) -> TrainResult:
    """Train a registered model (or a built one) on a data source with a recipe.

    Args:
        model_or_name: a registry name or its `ModelSpec` (built to fit the data's input shape and
            classes), or a `keras.Model`.
        data: a source for `keras_zoo.data.load_splits` (``"digits"``, a TFDS name, an image
            folder, ``(x, y)`` arrays) or a ready `Splits`.
        recipe: a recipe name or `Recipe`; defaults to the model's registered recipe.
        epochs, batch_size, learning_rate: shortcuts that override the recipe's values.
        run_dir: where checkpoints and logs go; defaults to ``runs/<model>-<data>``. Running the
            same command again resumes an interrupted run from ``run_dir/backup``.
        seed: seeds the split, the shuffling, the augmentation and the initial weights.
        export: also write a SavedModel to ``run_dir/export``.
        resume: keep a backup each epoch and resume from it (``BackupAndRestore``).
        callbacks: extra Keras callbacks.
        data_options: extra keyword arguments for `load_splits` (``image_size``, ``color_mode``...).
        target: unlabelled images of the domain to adapt to, for models that train on two domains
            (`dann`): any data source (its labels, if it has them, are never trained on: they only
            report ``target_accuracy`` on the target's test split, in `metrics` and ``metrics.json``).
            Its images are resized to the source's size and must have as many channels.
        strategy: ``"mirrored"`` (every local GPU, or the CPU), ``"multi_worker"`` (the cluster in
            ``TF_CONFIG``) or a `tf.distribute.Strategy`: the model is built, compiled and trained
            under it. The recipe's ``batch_size`` is the global batch unless it sets
            ``batch_per_replica``; ``metrics.json`` records the split (``distribution``). A built
            `keras.Model` must have been built inside ``strategy.scope()``.
        **model_overrides: builder arguments (``width=64``, ``dropout=0.1``...).

    Returns:
        A `TrainResult` with the model, history, held-out metrics and run directory.

    Example:
        >>> result = keras_zoo.train("cnn_small", "digits", epochs=20)
        >>> result.metrics["accuracy"]
    """
    # First: a multi-worker strategy must exist before TensorFlow starts its runtime.
    strategy = distribute.resolve_strategy(strategy)
    spec, recipe = _resolve(model_or_name, recipe)
    changes = {k: v for k, v in
               {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate}.items()
               if v is not None}
    if epochs is not None:
        changes["min_steps"] = None  # an explicit epoch count is taken as given
    recipe = recipe.replace(**changes)
    if not isinstance(model_or_name, keras.Model):
        # Check the overrides before any data is read.
        registry.validate_request(spec, **model_overrides)
    name = spec.name if spec else model_or_name.name
    run_dir = run_dir or os.path.join("runs", f"{name}-{_slug(getattr(data, 'info', data) if isinstance(data, Splits) else data)}")
    spread = distribute.distribution(strategy, recipe.batch_size, recipe.learning_rate,
                                     recipe.batch_per_replica, recipe.lr_scaling)
    # What runs: the pipeline's batch is the global batch, the learning rate the scaled one.
    run_recipe = recipe.replace(batch_size=spread.global_batch_size, learning_rate=spread.learning_rate)
    chief = distribute.is_chief(strategy)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
    out_dir = distribute.work_dir(run_dir, strategy)
    os.makedirs(out_dir, exist_ok=True)

    keras.utils.set_random_seed(seed)
    splits, target_splits = _run_data(data, target, run_recipe, seed, data_options, strategy)
    info = splits.info
    recipe, run_recipe = _stretch_to_min_steps(recipe, run_recipe, info.num_examples["train"], name)
    with distribute.scope(strategy):
        model = _build_and_compile(model_or_name, spec, recipe, run_recipe, info, model_overrides, strategy,
                                   target)
    synchronized = distribute.synchronize_batch_norm(model) if spread.replicas > 1 else []
    precision = _precision(model_or_name, model, spec, run_recipe, name)

    run_callbacks = default_callbacks(out_dir, recipe, resume=resume) + list(callbacks)
    started = time.perf_counter()
    history = _fit(model, splits, recipe, run_callbacks, verbose, spread, run_dir, synchronized)
    seconds = time.perf_counter() - started
    _check_diverged(run_callbacks, out_dir, name, recipe)

    metrics = _held_out_metrics(model, splits, target_splits)
    hist = {k: [float(x) for x in v] for k, v in history.history.items()}
    summary = _run_summary(name, spec, info, recipe, model_overrides, seed, target_splits, spread, precision,
                           history, seconds, metrics)
    if not chief:
        distribute.remove_work_dir(run_dir, out_dir)
        return TrainResult(model, hist, metrics, run_dir, info, None, summary)
    export_path = _write_run(model, run_dir, summary, hist, name, info, spec, export)
    return TrainResult(model, hist, metrics, run_dir, info, export_path, summary)


def _stretch_to_min_steps(recipe: Recipe, run_recipe: Recipe, num_train: int, name: str):
    """(recipe, run_recipe) with the epochs the recipe's `min_steps` asks for on this training split."""
    epochs = run_recipe.epochs_for(num_train)
    if epochs == recipe.epochs:
        return recipe, run_recipe
    log.info("%s: %d epochs instead of %d: recipe %r trains at least %d steps, and %d training examples "
             "make %d steps an epoch at batch %d (pass epochs= to train exactly that many)", name, epochs,
             recipe.epochs, recipe.name, recipe.min_steps, num_train, run_recipe.steps_per_epoch(num_train),
             run_recipe.batch_size)
    return recipe.replace(epochs=epochs), run_recipe.replace(epochs=epochs)


def _run_data(data, target, run_recipe: Recipe, seed: int, data_options: dict | None, strategy):
    """The source's splits (paired with the target's training images where `target` is given) and
    the target's splits (``None`` without one), sharded for `strategy`."""
    splits = _load_data(data, run_recipe, seed, data_options)
    target_splits = None
    if target is not None:
        target_splits = _load_target(target, splits.info, run_recipe, seed, data_options)
        splits = dataclasses.replace(splits, train=_paired(splits.train, target_splits.train))
    return distribute.shard_splits(splits, strategy), target_splits


def _build_and_compile(model_or_name, spec, recipe: Recipe, run_recipe: Recipe, info, model_overrides: dict,
                       strategy, target):
    """Build the model for the data, check it fits the run, and compile it (inside the strategy's scope)."""
    model = _build(model_or_name, spec, run_recipe, info, model_overrides)
    _check_strategy(model, strategy)
    _check_class_count(model, info, recipe)
    steps_per_epoch = run_recipe.steps_per_epoch(info.num_examples["train"])
    if target is not None:
        _check_takes_target(model)
        # The paper's schedule of the reversal weight runs over the whole run.
        model.total_steps = run_recipe.epochs * steps_per_epoch
    run_recipe.compile(model, steps_per_epoch=steps_per_epoch)
    return model


def _precision(model_or_name, model, spec, run_recipe: Recipe, name: str) -> dict:
    """The compute precision the run uses and why (logged)."""
    if isinstance(model_or_name, keras.Model):
        precision = {"policy": model.dtype_policy.name, "reason": "the model was built by the caller"}
    else:
        policy, reason = choose_precision(run_recipe.precision, spec.family)
        precision = {"policy": policy, "reason": reason}
    log.info("precision %s for %s: %s", precision["policy"], name, precision["reason"])
    return precision


def _fit(model, splits: Splits, recipe: Recipe, run_callbacks, verbose, spread, run_dir: str, synchronized):
    """`model.fit` on the training split; a lost worker of a cluster becomes a clear error."""
    try:
        return model.fit(splits.train, validation_data=splits.validation, epochs=recipe.epochs,
                         callbacks=run_callbacks, verbose=verbose,
                         shuffle=False)  # the pipeline shuffles (seeded) itself
    except tf.errors.UnavailableError as err:
        if spread.workers < 2:
            raise
        raise RuntimeError(
            f"a worker of the cluster stopped ({str(err).strip().splitlines()[0][:200]}); start the same "
            f"command again on every machine: each resumes from its backup of the last finished epoch "
            f"(the chief's in {os.path.join(run_dir, 'backup')})") from err
    finally:
        distribute.restore_batch_norm(synchronized)


def _check_diverged(run_callbacks, out_dir: str, name: str, recipe: Recipe) -> None:
    """Raise if the `NanGuard` stopped the run on a non-finite loss."""
    guard = next(c for c in run_callbacks if isinstance(c, NanGuard))
    if guard.diverged_at is not None:
        epoch, batch, loss = guard.diverged_at
        best = os.path.join(out_dir, "best.keras")
        kept = f"the last good checkpoint is {best}" if os.path.exists(best) else "no checkpoint was written yet"
        raise FloatingPointError(
            f"training of {name!r} stopped: the loss became {loss} at epoch {epoch + 1}, batch {batch}; "
            f"{kept}. Lower the learning rate (recipe learning_rate={recipe.learning_rate}) or add clipnorm.")


def _held_out_metrics(model, splits: Splits, target_splits: Splits | None) -> dict:
    """Metrics on the test split, and on the target's test and validation splits where it is labelled."""
    metrics = {k: float(v) for k, v in
               model.evaluate(splits.test, return_dict=True, verbose=0).items()}
    if target_splits is not None and target_splits.info.targets == "label":
        # Target labels report only; they never reach a training step.
        measured = model.evaluate(target_splits.test, return_dict=True, verbose=0)
        metrics.update({f"target_{k}": float(v) for k, v in measured.items()})
        # The target's validation split (never trained on either): where a few target labels may
        # choose hyperparameters without touching the target's test split.
        measured = model.evaluate(target_splits.validation, return_dict=True, verbose=0)
        metrics.update({f"target_val_{k}": float(v) for k, v in measured.items()})
    return metrics


def _run_summary(name, spec, info, recipe: Recipe, model_overrides: dict, seed: int, target_splits,
                 spread, precision: dict, history, seconds: float, metrics: dict) -> dict:
    """What ``metrics.json`` records of a run."""
    return {
        "model": name,
        "task": spec.task if spec else None,  # read by `keras-zoo export RUN_DIR`
        "data": info.name,
        "recipe": recipe.to_dict(),
        "overrides": model_overrides,
        "seed": seed,
        "input_shape": list(info.input_shape),
        "class_names": list(info.class_names),
        "num_examples": info.num_examples,
        **({"target": {"data": target_splits.info.name, "num_examples": target_splits.info.num_examples,
                       "labelled": target_splits.info.targets == "label"}} if target_splits is not None else {}),
        "distribution": spread.to_dict(),
        "precision": precision,
        "epochs_run": len(history.epoch),
        "train_seconds": round(seconds, 2),
        "test": metrics,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_run(model, run_dir: str, summary: dict, hist: dict, name: str, info, spec, export: bool):
    """Write the model, ``metrics.json``, the curves (and the SavedModel if `export`); return its path."""
    with atomic_path(os.path.join(run_dir, "model.keras"), suffix=".keras") as tmp:
        model.save(tmp)
    atomic_write_text(os.path.join(run_dir, "metrics.json"), json.dumps(summary, indent=2, default=str) + "\n")
    if hist:
        plot_history(hist, os.path.join(run_dir, "curves.png"), title=f"{name} on {info.name}")
    if not export:
        return None
    from keras_zoo.export import export_model

    task_args = {"task": spec.task, "signatures": spec.signatures} if spec is not None else {}
    return export_model(model, os.path.join(run_dir, "export"), class_names=info.class_names,
                        value_range=info.value_range, **task_args)


def _load_target(target, info, recipe: Recipe, seed: int, data_options: dict | None) -> Splits:
    """The target domain's splits at the source's image size, labelled where the source has labels."""
    options = {k: v for k, v in dict(data_options or {}).items() if k not in ("corruption", "image_size")}
    if len(info.input_shape) == 3:
        options["image_size"] = tuple(info.input_shape[:2])
    # Another seed than the source's: the two pipelines shuffle independently.
    common = dict(batch_size=recipe.batch_size, seed=seed + 1, **options)
    if isinstance(target, Splits):
        splits = target
    else:
        try:
            splits = load_splits(target, targets="label", **common)
        except ValueError as err:
            if "cannot give targets='label'" not in str(err):
                raise
            splits = load_splits(target, targets="none", **common)
    if tuple(splits.info.input_shape) != tuple(info.input_shape):
        raise ValueError(
            f"the target {splits.info.name!r} has images of shape {tuple(splits.info.input_shape)} but the "
            f"source {info.name!r} has {tuple(info.input_shape)}: give both the same channels "
            f"(data_options={{'color_mode': 'rgb'}}, or --color-mode rgb)")
    return splits


def _paired(source, target):
    """Batches ``((source_images, target_images), source_labels)``: the target repeats as long as the
    source lasts, and only its images are kept."""
    images = target.map(lambda *example: example[0]).repeat()
    return tf.data.Dataset.zip((source, images)).map(
        lambda example, other: ((example[0], other), *example[1:]), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)


def _check_takes_target(model) -> None:
    if not getattr(model, "takes_target", False):
        raise ValueError(f"target= is for models trained on two domains (dann); {model.name!r} trains on "
                         "one data set: leave target out")


def plot_history(history: dict, path: str, title: str = "") -> str:
    """Training curves: one panel per metric, train and validation together. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, key in zip(axes[0], names):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path


def is_export(path: str) -> bool:
    """Whether `path` is a SavedModel directory, or a serving model directory of numbered versions."""
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, "saved_model.pb")) or (
        not os.path.exists(os.path.join(path, "model.keras")) and any(d.isdigit() for d in os.listdir(path))))


def _export_classifier(path: str, trust: bool) -> keras.Model:
    """A classifier's export (checked by `load_export`) as a Keras model giving its probabilities."""
    from keras_zoo.export import load_export

    loaded, meta = load_export(path, trust=trust)
    # serving_default takes uint8 images; the float32 twin in [0, 1] ("classify") is what the data
    # pipelines feed. Exports of feature vectors serve float32 under serving_default itself.
    names = [n for n in ("classify", "serving_default") if n in loaded.signatures]
    floats = [n for n in names if loaded.signatures[n].structured_input_signature[1]["inputs"].dtype == tf.float32]
    chosen = floats[0] if floats else "serving_default"
    signature = loaded.signatures[chosen]
    spec = signature.structured_input_signature[1]["inputs"]
    if meta.get("task", "classification") != "classification" or "probabilities" not in signature.structured_outputs:
        raise ValueError(f"evaluate takes the export of a classifier (outputs 'probabilities'); {path!r} is a "
                         f"{meta.get('task')!r} export: evaluate its run directory or .keras file instead")
    if not floats:
        raise ValueError(f"the export at {path!r} has no float32 signature (serving_default takes "
                         f"{spec.dtype.name}); evaluate needs its 'classify' signature")
    inputs = keras.Input(shape=tuple(spec.shape[1:]), name="inputs")
    # The closure holds `loaded`: its variables live as long as the layer does.
    probabilities = keras.layers.Lambda(lambda x: loaded.signatures[chosen](inputs=x)["probabilities"])(inputs)
    return keras.Model(inputs, probabilities, name=meta.get("model", "export"))


def _portable_classifier(path: str, trust: bool = False) -> keras.Model | None:
    """An ONNX or LiteRT export (file, version or model directory; quantised files too) as a Keras
    model giving its probabilities, the file run by its own runtime; None when `path` holds none."""
    import numpy as np

    from keras_zoo.export import formats

    if formats.model_file(path) is None:
        return None
    runner = formats.load(path, trust=trust)
    meta = runner.metadata
    if meta.get("task") != "classification" or "probabilities" not in meta.get("outputs", []):
        raise ValueError(f"evaluate takes the export of a classifier (outputs 'probabilities'); {path!r} is a "
                         f"{meta.get('task')!r} export: evaluate its run directory or .keras file instead")
    (contract,) = runner.contract
    shape, uint8 = tuple(contract["shape"][1:]), contract["dtype"] == "uint8"
    classes = len(meta.get("class_names") or []) or None

    def probabilities(x):
        # The pipelines give float32 in [0, 1]; the file takes what its contract says (uint8 pixels).
        x = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8) if uint8 else x.astype(contract["dtype"])
        return np.asarray(runner(inputs=x)["probabilities"], np.float32)

    def call(x):
        out = tf.numpy_function(probabilities, [x], tf.float32, stateful=False)
        out.set_shape((None, classes))
        return out

    inputs = keras.Input(shape=shape, name="inputs")
    outputs = keras.layers.Lambda(call, output_shape=(classes,))(inputs)
    return keras.Model(inputs, outputs, name=meta.get("model", "export"))


def load_model(path: str) -> keras.Model:
    """Load a `.keras` file, or the `model.keras` of a run directory, with the package's one safe
    loader (`keras_zoo.weights.load_keras_archive`), uncompiled."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.keras")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model at {path!r}: expected a .keras file or a run directory")
    return weights.load_keras_archive(path)


def _input_contract(model) -> tuple | None:
    inputs = getattr(model, "inputs", None)
    return tuple(inputs[0].shape[1:]) if inputs else None


def _fit_data_to_model(model, data, recipe: Recipe, batch_size: int, seed: int, data_options: dict | None) -> Splits:
    """`data` loaded at the model's input contract (size, channels).

    Images of another size or channel count are converted (resized; RGB made grey or grey repeated to
    RGB) with a one-line note; where no conversion makes sense (other ranks, other channel counts, or
    an image_size/color_mode asked for that contradicts the model) the error names both shapes.
    """
    options = _data_options(recipe, data_options)
    if isinstance(data, Splits):
        splits = data
    else:
        splits = load_splits(data, targets=recipe.targets, batch_size=batch_size, seed=seed, **options)
    want, have = _input_contract(model), tuple(splits.info.input_shape)
    if want is None or have == want or isinstance(data, Splits):
        return splits
    images = len(want) == 3 and len(have) == 3 and want[-1] in (1, 3) and have[-1] in (1, 3)
    asked = {k: options[k] for k in ("image_size", "color_mode") if options.get(k) is not None}
    if not images or asked:
        reason = (f" (asked for {', '.join(f'{k}={v!r}' for k, v in asked.items())})" if asked and images else "")
        raise ValueError(f"model {model.name!r} takes inputs of shape {want} but the data {splits.info.name!r} "
                         f"has {have}{reason}: evaluate it on data of its own kind"
                         + (", or leave --image-size/--color-mode out to convert" if asked and images else ""))
    notes = []
    if have[:2] != want[:2]:
        notes.append(f"resized from {have[0]}x{have[1]} to {want[0]}x{want[1]}")
    if have[-1] != want[-1]:
        notes.append("RGB made grayscale" if want[-1] == 1 else "grayscale repeated to RGB")
    log.warning("evaluate: %s takes %s images; the data's %s images are %s", model.name, "x".join(map(str, want)),
                "x".join(map(str, have)), " and ".join(notes))
    options.update(image_size=tuple(want[:2]), color_mode="grayscale" if want[-1] == 1 else "rgb")
    return load_splits(data, targets=recipe.targets, batch_size=batch_size, seed=seed, **options)


_CHECKPOINT_NAME = re.compile(r"[a-z][a-z0-9_]*(?::[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def _shipped_checkpoint(name: str):
    """The model of the shipped checkpoint ``NAME:TAG`` (``NAME``: its default one), or None where
    `name` is a path that exists or not a name of that form. An unknown tag raises, listing the tags."""
    if os.path.exists(name) or not _CHECKPOINT_NAME.fullmatch(name):
        return None
    model_name, _, tag = name.partition(":")
    if model_name not in weights.pretrained_names():
        return None  # load_model names the missing file
    model, _ = weights.load_entry(model_name, tag or True)
    return model


def prepare_evaluation(model, data, *, batch_size: int = 64, seed: int = 0, recipe=None,
                       data_options: dict | None = None, trust: bool = False):
    """(compiled model, `Splits` at its input contract, recipe) for `evaluate`."""
    portable = _portable_classifier(os.fspath(model), trust) if isinstance(model, (str, os.PathLike)) else None
    if portable is not None:
        model, recipe = portable, recipe or "classifier"
    elif isinstance(model, (str, os.PathLike)) and is_export(os.fspath(model)):
        model, recipe = _export_classifier(os.fspath(model), trust), recipe or "classifier"
    elif isinstance(model, (str, os.PathLike)):
        model = _shipped_checkpoint(os.fspath(model)) or load_model(os.fspath(model))
    spec, recipe = _resolve(model, recipe) if recipe is None else (None, get_recipe(recipe))
    data = _fit_data_to_model(model, data, recipe, batch_size, seed, data_options)
    _check_class_count(model, data.info, recipe)
    if not model.compiled:
        recipe.compile(model)
    if portable is not None:
        model.jit_compile = False  # the file runs in its own runtime, outside XLA
    return model, data, recipe


def evaluate(model, data, split: str = "test", *, batch_size: int = 64, seed: int = 0,
             recipe=None, data_options: dict | None = None, trust: bool = False,
             corruptions=None, severities=(1, 2, 3, 4, 5), reference="mlp_lecture",
             reference_run_dir: str | None = None) -> dict:
    """Metrics of a model on one split of a data source.

    Images of another size or channel count than the model's (a model trained on RGB photos, a grey
    folder) are converted to its input contract with a one-line note (see `data_options`'
    ``image_size``/``color_mode`` to choose, which must then agree with the model).

    Args:
        model: a compiled `keras.Model`, a `.keras` path, a run directory, a shipped checkpoint's
            ``NAME:TAG`` (``NAME`` alone: its default checkpoint) or a classifier's export:
            a SavedModel directory (see `keras_zoo.load_export` for `trust`), or an ONNX or LiteRT
            export (``.onnx``/``.tflite`` file, version or model directory; quantised ones too),
            run by its own runtime on the split's images as uint8 pixels.
        data: a data source or `Splits` (see `train`).
        split: ``"train"``, ``"validation"`` or ``"test"``.
        trust: run a SavedModel that lacks valid keras_zoo metadata.
        corruptions: None (the clean metrics), or ``"all"``, a family (``"noise"``, ``"blur"``,
            ``"weather"``, ``"digital"``) or a list of names from
            `keras_zoo.data.corruptions.COMMON_CORRUPTIONS`: then the result is a corruption report
            (`keras_zoo.robustness.build_report`: accuracy per corruption and severity, their mean,
            the corruption errors and mCE relative to `reference`; `robustness.format_report`
            prints it, `robustness.plot_corruptions` draws it).
        severities: with `corruptions`, the severities (1-5) to measure.
        reference: with `corruptions`, the model the corruption errors are relative to: a registry
            name (trained on the same data's train split, once, in `reference_run_dir`), a run
            directory or `.keras` file, or None.
    """
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    if corruptions is not None:
        return _corruption_report(model, data, corruptions, severities, reference=reference, split=split,
                                  batch_size=batch_size, seed=seed, recipe=recipe, data_options=data_options,
                                  trust=trust, reference_run_dir=reference_run_dir)
    model, data, recipe = prepare_evaluation(model, data, batch_size=batch_size, seed=seed, recipe=recipe,
                                             data_options=data_options, trust=trust)
    return {k: float(v) for k, v in
            model.evaluate(getattr(data, split), return_dict=True, verbose=0).items()}


def _reference_model(reference, data, info, seed: int, data_options: dict | None, run_dir: str | None):
    """(model, description) of the reference: a run or `.keras` file as it is, or a registry name
    trained once on the data's train split (reused from `run_dir` when that run is complete)."""
    if isinstance(reference, (str, os.PathLike)) and os.path.exists(os.fspath(reference)):
        return load_model(os.fspath(reference)), os.fspath(reference)
    if not isinstance(reference, str):
        return reference, getattr(reference, "name", "reference")
    factory.get_spec(reference)  # unknown names fail here, naming close matches
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(os.path.normpath(str(info.name)))).strip("-")
    run_dir = run_dir or os.path.join("runs", f"reference-{reference}-{slug or 'data'}-seed{seed}")
    summary_path = os.path.join(run_dir, "metrics.json")
    if os.path.exists(summary_path) and os.path.exists(os.path.join(run_dir, "model.keras")):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        if summary.get("model") == reference and summary.get("data") == info.name and \
                summary.get("input_shape") == list(info.input_shape):
            log.warning("corruptions: reference %s reused from %s", reference, run_dir)
            return load_model(run_dir), run_dir
    log.warning("corruptions: training the reference %s on %s (train split) in %s", reference, info.name, run_dir)
    options = dict(data_options or {})
    if len(info.input_shape) == 3:
        options.update(image_size=tuple(info.input_shape[:2]),
                       color_mode="grayscale" if info.input_shape[-1] == 1 else "rgb")
    result = train(reference, data, run_dir=run_dir, seed=seed, verbose=0, data_options=options)
    return result.model, run_dir


def _corruption_report(model, data, corruptions, severities, *, reference, split, batch_size, seed, recipe,
                       data_options, trust, reference_run_dir) -> dict:
    """`evaluate` under common corruptions (see `keras_zoo.robustness`)."""
    from keras_zoo import robustness
    from keras_zoo.data.corruptions import check_corruptions

    names, severities = check_corruptions(corruptions, severities)
    model, splits, _ = prepare_evaluation(model, data, batch_size=batch_size, seed=seed, recipe=recipe,
                                          data_options=data_options, trust=trust)
    if splits.info.targets != "label" or len(splits.info.input_shape) != 3:
        raise ValueError(f"corruptions are measured on labelled images; {splits.info.name!r} gives "
                         f"{splits.info.targets} targets of inputs {tuple(splits.info.input_shape)}")
    dataset = getattr(splits, split)
    clean, table = robustness.accuracies(model, dataset, names, severities, seed)
    measured = None
    if reference is not None:
        ref_model, where = _reference_model(reference, data, splits.info, seed, data_options, reference_run_dir)
        ref_model = robustness.adapted(ref_model, tuple(splits.info.input_shape))
        ref_model, _, _ = prepare_evaluation(ref_model, splits, batch_size=batch_size, seed=seed)
        ref_clean, ref_table = robustness.accuracies(ref_model, dataset, names, severities, seed)
        measured = {"model": ref_model.name, "source": where, "clean_accuracy": ref_clean, "accuracy": ref_table}
    return robustness.build_report(model.name, splits.info, split, names, severities, seed, clean, table, measured)
