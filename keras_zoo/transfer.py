"""Fine-tuning pretrained models on new classes: Keras's two-phase transfer-learning recipe.

`finetune(name, data)` cuts a pretrained model at its feature layer (``"pool"`` for classifiers),
puts a new head for the data's classes on top and trains it in two phases:

1. the backbone frozen and called with ``training=False`` (batch-norm in inference mode), only the
   new head learning at `learning_rate`;
2. optionally (``fine_tune_epochs > 0``) the backbone unfrozen, all of it or its top layers, at a
   `fine_tune_learning_rate` (default: the same rate). Batch-norm stays in inference mode: the graph fixes
   ``training=False`` for the backbone, and its scale/offset stay frozen too.

When the data does not match the checkpoint's input contract, safe adaptations (resize, grayscale
to RGB, RGB to grayscale) become the first layers of the fine-tuned model and are logged; anything
else (vectors for an image model, values outside [0, 1], unknown channel counts) is refused with a
message naming the contract. Because the adaptation is part of the model, its SavedModel export
(the serving contract: ``serving_default`` on raw uint8 images, class names in its assets and
signatures) needs no client-side preprocessing beyond decoding the image.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os

import keras
import numpy as np

from keras_zoo import _validate, distribute, factory, imagenet, weights
from keras_zoo._io import atomic_path, atomic_write_text
from keras_zoo.export import load_export
from keras_zoo.models import layers as zoo_layers
from keras_zoo.training import is_export

log = logging.getLogger("keras_zoo")

# Tasks whose models can be cut at a feature layer and given a head for new classes.
_FEATURE_TASKS = ("classification", "contrastive", "segmentation")


@dataclasses.dataclass
class FinetuneResult:
    """What `finetune` returns.

    Attributes:
        model: the fine-tuned model (input: the data's shape; output: class probabilities).
        metrics: held-out (test split) metrics after the last phase.
        phases: per phase, ``{"name", "epochs_run", "learning_rate", "trainable_weights", "test"}``.
        history: per phase, the epoch logs.
        class_names: the classes of the new head, in output order.
        adaptations: the input adaptations put in front of the backbone (empty when none).
        base: what it started from, e.g. ``"cnn_small:digits-0to4"``.
        run_dir: where checkpoints, logs and ``metrics.json`` were written.
        info: the `DatasetInfo` of the data.
        export_path: the SavedModel directory, when `export=True`.
    """

    model: keras.Model
    metrics: dict
    phases: list
    history: list
    class_names: list
    adaptations: list
    base: str
    run_dir: str
    info: object
    export_path: str | None = None


# --------------------------------------------------------------------------- the base model


def _base_task(name_or_model, trust: bool = False) -> str:
    """The task of the model to fine-tune, known before any weights or data are read."""
    if isinstance(name_or_model, keras.Model):
        try:
            return factory.get_spec(name_or_model.name).task
        except KeyError:
            # Unregistered: per-pixel outputs from a "logits" layer mean a segmentation model.
            model = name_or_model
            per_pixel = len(model.outputs[0].shape) == 4 and "logits" in {l.name for l in model.layers}
            return "segmentation" if per_pixel else "classification"
    if isinstance(name_or_model, (str, os.PathLike)) and is_export(os.fspath(name_or_model)):
        load_export(os.fspath(name_or_model), trust=trust)  # refuses untrusted or unsafe graphs first
        raise ValueError(f"{os.fspath(name_or_model)!r} is a SavedModel export, which has no Keras layers to "
                         "fine-tune; pass its run directory's model.keras loaded with keras_zoo.load_model, "
                         "or a registry name with shipped weights")
    if not isinstance(name_or_model, str):
        raise ValueError(f"finetune takes a registry name, 'name:tag' or a keras.Model, got {name_or_model!r}")
    return factory.get_spec(name_or_model.partition(":")[0]).task


def _load_base(name_or_model, pretrained, data_shape):
    """(model, label, contract) for a built model or a registry name (+ tag). Without a tag, the
    checkpoint whose input size fits `data_shape` best is chosen (`weights.closest_tag`)."""
    if isinstance(name_or_model, keras.Model):
        shape = tuple(name_or_model.inputs[0].shape[1:])
        return name_or_model, name_or_model.name, {"shape": list(shape), "value_range": [0.0, 1.0]}
    name, _, tag = name_or_model.partition(":")
    if tag:
        if pretrained not in (True, tag):
            raise ValueError(f"{name_or_model!r} names the tag {tag!r}, but pretrained={pretrained!r}")
        pretrained = tag
    if pretrained is False or pretrained is None:
        raise ValueError("finetune starts from pretrained weights (pretrained=True or a tag); to train "
                         f"{name!r} from scratch use keras_zoo.train({name!r}, data)")
    if name in imagenet.names() and pretrained in (True, "imagenet") and name not in weights.pretrained_names():
        return _imagenet_base(f"{name}:imagenet", data_shape)
    if pretrained is True:
        pretrained = weights.closest_tag(name, data_shape)
    model, entry = weights.load_entry(name, pretrained)
    label = f"{name}:{entry['tag']}"
    log.info("finetune: starting from %s, trained on %s images of %s", label,
             "x".join(map(str, entry["input_contract"]["shape"])), entry["dataset"]["description"])
    return model, label, entry["input_contract"]


def _tags_with_sizes(name: str) -> list:
    try:
        return [f"{e['tag']} ({'x'.join(map(str, e['input_contract']['shape'][:2]))})" for e in weights.entries(name)]
    except KeyError:
        return []


def _imagenet_base(label: str, data_shape):
    """(model, label, contract) of an ImageNet backbone (`applications` family) built at the data's
    image size.

    Its weights do not depend on the input size, so nothing is resized; grayscale data gets 3
    channels through the usual adapter.
    """
    name = label.split(":")[0]
    shape = tuple(data_shape)
    if len(shape) == 3:
        shape = (*shape[:2], 3)
    model = imagenet.create_imagenet(factory.get_spec(name), shape, include_top=False, pooling="avg")
    return model, label, {"shape": list(shape), "value_range": [0.0, 1.0]}


def _backbone(model, label: str, task: str):
    """The pretrained feature extractor.

    A contrastive model's `encoder`; a segmentation model up to its per-pixel ``"logits"`` layer;
    a classifier up to its pooled features.
    """
    encoder = getattr(model, "encoder", None)
    if task == "contrastive" and isinstance(encoder, keras.Model):
        return keras.Model(encoder.inputs[0], encoder.outputs[0], name="backbone")
    if task == "segmentation":
        try:
            features = model.get_layer("logits").input
        except ValueError:
            raise ValueError(f"{label} has no per-pixel 'logits' layer to replace; finetune cuts "
                             "segmentation models (U-Net) there") from None
        return keras.Model(model.inputs, features, name="backbone")
    return keras.Model(model.inputs, zoo_layers.pooled_features(model, label), name="backbone")


def _segmentation_head(features, num_classes: int, dropout: float, size):
    """1x1 convolution to per-pixel class probabilities, resized back to the data's size if needed."""
    x = keras.layers.Dropout(dropout, name="head_dropout")(features) if dropout else features
    x = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    if size is not None:
        x = keras.layers.Resizing(size[0], size[1], interpolation="bilinear", name="adapt_resize_back")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


# --------------------------------------------------------------------------- the input contract


def _adapters(data_shape: tuple, value_range, contract: dict, label: str):
    """Layers mapping the data's inputs onto the contract, and the log lines that describe them."""
    want = tuple(contract["shape"])
    have = tuple(data_shape)
    rule = (f"the input contract of {label} is float32 {'x'.join(map(str, want))} with values in "
            f"[{contract['value_range'][0]}, {contract['value_range'][1]}]")
    if have != want and (len(have) != 3 or len(want) != 3):
        raise ValueError(f"the data's inputs have shape {have}, which cannot be adapted safely: {rule}")
    lo, hi = (float(v) for v in (value_range or (0.0, 1.0)))
    c_lo, c_hi = (float(v) for v in contract["value_range"])
    if lo < c_lo - 1e-6 or hi > c_hi + 1e-6:
        raise ValueError(f"the data's values lie in [{lo:g}, {hi:g}], outside the range {label} was trained "
                         f"on: {rule}. Rescale the inputs (pixel values / 255) before fine-tuning.")
    if have == want:
        return [], []
    if have[-1] not in (1, 3) or want[-1] not in (1, 3):
        raise ValueError(f"the data has {have[-1]} channels; only 1 <-> 3 channel conversion is safe, "
                         f"and {rule}")
    layers, notes = [], []
    if have[:2] != want[:2]:
        # Antialiasing when shrinking, so small features are averaged rather than aliased.
        layers.append(keras.layers.Resizing(want[0], want[1], interpolation="bilinear",
                                            antialias=have[0] > want[0] or have[1] > want[1],
                                            name="adapt_resize"))
        notes.append(f"resizing {have[0]}x{have[1]} inputs to {want[0]}x{want[1]} inside the model")
    if have[-1] == 3 and want[-1] == 1:
        # ITU-R 601 luma weights, as tf.image.rgb_to_grayscale; a frozen 1x1 convolution is a
        # built-in layer, so the saved model still loads in safe mode.
        luma = np.array([0.2989, 0.5870, 0.1140], dtype="float32").reshape(1, 1, 3, 1)
        layers.append(keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="adapt_rgb_to_gray",
                                          kernel_initializer=keras.initializers.Constant(luma)))
        notes.append("converting RGB inputs to grayscale inside the model")
    elif have[-1] == 1 and want[-1] == 3:
        layers.append("gray_to_rgb")
        notes.append("repeating grayscale inputs to 3 channels inside the model")
    return layers, [f"{n} ({rule})" for n in notes]


def _apply(adapters, x):
    for layer in adapters:
        if layer == "gray_to_rgb":
            x = keras.layers.Concatenate(axis=-1, name="adapt_gray_to_rgb")([x, x, x])
        else:
            x = layer(x)
    return x


# --------------------------------------------------------------------------- freezing


def _leaf_layers(model):
    """Every non-model layer of `model`, bottom to top, looking inside nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _unfreeze(backbone, unfreeze):
    """Make the backbone trainable: all its layers with weights, or the top `unfreeze` of them.

    Batch-norm layers stay frozen (and in inference mode, fixed by the graph's ``training=False``):
    their statistics come from the pretraining data and a few labelled images would only add noise.
    """
    leaves = list(_leaf_layers(backbone))
    weighted = [l for l in leaves if l.weights and not isinstance(l, keras.layers.BatchNormalization)]
    chosen = weighted if unfreeze == "all" else weighted[-unfreeze:]
    backbone.trainable = True
    for layer in leaves:
        layer.trainable = layer in chosen
    return [layer.name for layer in chosen]


# --------------------------------------------------------------------------- fine-tuning


def _check_unfreeze(unfreeze):
    if unfreeze == "all":
        return unfreeze
    if isinstance(unfreeze, str) and unfreeze.isdigit():
        unfreeze = int(unfreeze)
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, int) or unfreeze < 1:
        raise ValueError(f"unfreeze must be 'all' or an int >= 1 (top weighted layers), got {unfreeze!r}")
    return unfreeze


def finetune(name_or_model, data, num_classes: int | None = None, *, pretrained=True,
             epochs: int = 30, fine_tune_epochs: int = 0, unfreeze="all", learning_rate: float = 1e-3,
             fine_tune_learning_rate: float | None = None, batch_size: int = 32, head_dropout: float = 0.2,
             early_stopping_patience: int | None = 10, augment=(), seed: int = 0,
             run_dir: str | None = None, export: bool = False, data_options: dict | None = None,
             verbose="auto", trust: bool = False, strategy=None) -> FinetuneResult:
    """Fine-tune a pretrained model on new classes (Keras's two-phase transfer-learning recipe).

    Args:
        name_or_model: a registry name with shipped weights (``"cnn_small"``), ``"name:tag"``, an
            ImageNet backbone (``"mobilenet_v3_small"``, see `keras_zoo.imagenet`; built at the data's
            image size), or a trained `keras.Model` with a ``"pool"`` layer.
        data: a `keras_zoo.data.load_splits` source (image folder of class sub-folders, ``(x, y)``
            arrays, built-in name) or a ready `Splits` with targets ``"label"``.
        num_classes: classes of the new head; default (and checked against) the data's.
        pretrained: ``True`` (the default checkpoint; ImageNet for the `applications` family) or a
            tag (``"imagenet"``).
        epochs: phase 1 epochs (new head only, backbone frozen).
        fine_tune_epochs: phase 2 epochs (backbone unfrozen); 0 skips phase 2.
        unfreeze: phase 2 unfreezes ``"all"`` backbone layers or the top `unfreeze` layers with
            weights (batch-norm always stays frozen and in inference mode).
        learning_rate: phase 1 learning rate (Adam).
        fine_tune_learning_rate: phase 2 learning rate; default `learning_rate`. (A tenth of it, the
            usual choice for large ImageNet backbones, barely moves these small ones in a few epochs:
            on real digits 5-9 with 20 images per class, 74.8% held out against 90.0% at the same
            rate, 3 seeds each.)
        batch_size, head_dropout, early_stopping_patience, augment, seed: as in `keras_zoo.train`.
        run_dir: where checkpoints, logs and ``metrics.json`` go (default ``runs/<base>-finetune``).
        export: also write a SavedModel to ``run_dir/export`` whose ``serving_default`` takes raw
            uint8 images of the data's size and returns ``probabilities`` and ``class_ids``.
        data_options: extra `load_splits` arguments (``image_size``, ``color_mode``, fractions...).
        trust: let a SavedModel without valid keras_zoo metadata past the provenance check (a
            SavedModel itself cannot be fine-tuned; the check runs so that one is never executed).
        strategy: a `tf.distribute` strategy or its name (see `keras_zoo.train`): the pretrained
            model is restored, extended and compiled inside its scope; ``batch_size`` is the
            global batch. Under a multi-worker strategy the chief alone writes `run_dir`.

    Returns:
        A `FinetuneResult`.

    Example:
        >>> result = keras_zoo.finetune("cnn_small", "my_images/", fine_tune_epochs=10, export=True)
        >>> result.metrics["accuracy"], result.export_path
    """
    # First: a multi-worker strategy must exist before TensorFlow starts its runtime.
    strategy = distribute.resolve_strategy(strategy)
    unfreeze = _check_unfreeze(unfreeze)
    epochs = _validate.positive_int("epochs", epochs)
    batch_size = _validate.positive_int("batch_size", batch_size)
    fine_tune_epochs = _validate.positive_int("fine_tune_epochs", fine_tune_epochs, minimum=0)
    fine_tune_learning_rate = fine_tune_learning_rate or learning_rate

    task, targets, splits, num_classes = _finetune_data(
        name_or_model, data, num_classes, trust=trust, batch_size=batch_size, seed=seed, augment=augment,
        data_options=data_options)
    info = splits.info
    with distribute.scope(strategy):
        base, label, contract = _load_base(name_or_model, pretrained, info.input_shape)
        adapters, notes = _fit_data_to_base(label, contract, info)
        model, backbone = _finetune_model(base, label, task, adapters, contract, info, num_classes,
                                          head_dropout, seed)

    run_dir = run_dir or os.path.join("runs", f"{label.replace(':', '-')}-finetune")
    chief = distribute.is_chief(strategy)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
    common = dict(targets=targets, optimizer="adam", batch_size=batch_size, monitor="val_loss",
                  monitor_mode="min", early_stopping_patience=early_stopping_patience)
    phases, histories = [], []
    result = _head_phase(model, splits, common, learning_rate, epochs, seed, run_dir, verbose, strategy,
                         phases, histories)
    if fine_tune_epochs:
        result = _unfrozen_phase(model, backbone, splits, common, unfreeze, fine_tune_learning_rate,
                                 fine_tune_epochs, seed, run_dir, verbose, strategy, phases, histories)

    class_names = [str(c) for c in info.class_names]
    export_path = None
    if chief:
        export_path = _write_finetune_run(model, run_dir, task, label, info, class_names, contract, notes,
                                          phases, result, seed, export)
    return FinetuneResult(model=model, metrics=result.metrics, phases=phases, history=histories,
                          class_names=class_names, adaptations=notes, base=label, run_dir=run_dir,
                          info=info, export_path=export_path)


def _finetune_data(name_or_model, data, num_classes, *, trust, batch_size, seed, augment, data_options):
    """Check the base can take new classes; load (or check) the data for it.

    Returns ``(task, targets, splits, num_classes)``.
    """
    from keras_zoo.data import Splits, load_splits

    task = _base_task(name_or_model, trust)
    label = getattr(name_or_model, "name", name_or_model)
    if task not in _FEATURE_TASKS:
        raise ValueError(f"{label} is a {task} model; finetune gives new classes to classifiers, "
                         f"encoders and U-Nets ({', '.join(_FEATURE_TASKS)} models)")
    targets = "mask" if task == "segmentation" else "label"
    splits = data if isinstance(data, Splits) else load_splits(
        data, targets=targets, batch_size=batch_size, seed=seed, augment=augment, **(data_options or {}))
    info = splits.info
    if info.targets != targets or not info.num_classes:
        raise ValueError(f"finetuning {label} needs data with targets={targets!r}; {info.name!r} gives "
                         f"{info.targets!r}")
    if num_classes is None:
        num_classes = info.num_classes
    elif num_classes != info.num_classes:
        raise ValueError(f"num_classes={num_classes} but the data {info.name!r} has {info.num_classes} "
                         f"classes {list(info.class_names)}")
    return task, targets, splits, num_classes


def _fit_data_to_base(label, contract, info):
    """Warn where the base shrinks the data's images; return the input adapters and their notes."""
    shrink = weights.shrink_factor(contract["shape"], info.input_shape)
    if shrink > 2:
        log.warning("finetune: %s was trained on %s images; the data's %s images are shrunk %.1fx inside "
                    "the model and lose detail (tags of %s: %s)", label,
                    "x".join(map(str, contract["shape"][:2])), "x".join(map(str, info.input_shape[:2])),
                    shrink, label.split(":")[0], ", ".join(_tags_with_sizes(label.split(":")[0])))
    adapters, notes = _adapters(info.input_shape, info.value_range, contract, label)
    for note in notes:
        log.warning("finetune: %s", note)
    return adapters, notes


def _finetune_model(base, label, task, adapters, contract, info, num_classes, head_dropout, seed):
    """Adapters -> frozen backbone (inference mode) -> new head; returns ``(model, backbone)``."""
    keras.utils.set_random_seed(seed)
    backbone = _backbone(base, label, task)
    backbone.trainable = False
    inputs = keras.Input(shape=tuple(info.input_shape), name="inputs")
    features = backbone(_apply(adapters, inputs), training=False)
    if task == "segmentation":
        resized = tuple(info.input_shape[:2]) != tuple(contract["shape"][:2])
        outputs = _segmentation_head(features, num_classes, head_dropout,
                                     tuple(info.input_shape[:2]) if resized else None)
    else:
        outputs = zoo_layers.classification_head(features, num_classes, dropout=head_dropout)
    return keras.Model(inputs, outputs, name=f"{label.split(':')[0]}_finetuned"), backbone


def _epochs_run(result) -> int:
    return len(next(iter(result.history.values()), []))


def _head_phase(model, splits, common, learning_rate, epochs, seed, run_dir, verbose, strategy,
                phases, histories):
    """Phase 1: train the new head with the backbone frozen; record it in `phases`/`histories`."""
    from keras_zoo.recipes import Recipe
    from keras_zoo.training import train

    head = Recipe(name="finetune-head", description="new head, backbone frozen", learning_rate=learning_rate,
                  schedule="cosine", epochs=epochs, **common)
    result = train(model, splits, recipe=head, seed=seed, run_dir=os.path.join(run_dir, "phase1-head"),
                   resume=False, verbose=verbose, strategy=strategy)
    phases.append({"name": "head", "epochs_run": _epochs_run(result),
                   "learning_rate": learning_rate, "trainable_weights": len(model.trainable_weights),
                   "test": result.metrics})
    histories.append(result.history)
    return result


def _unfrozen_phase(model, backbone, splits, common, unfreeze, learning_rate, epochs, seed, run_dir, verbose,
                    strategy, phases, histories):
    """Phase 2: unfreeze (part of) the backbone and train on; record it in `phases`/`histories`."""
    from keras_zoo.recipes import Recipe
    from keras_zoo.training import train

    unfrozen = _unfreeze(backbone, unfreeze)
    log.info("finetune: phase 2 unfreezes %d backbone layers: %s", len(unfrozen), unfrozen)
    tune = Recipe(name="finetune-all", description="backbone unfrozen, lower learning rate",
                  learning_rate=learning_rate, schedule="constant", epochs=epochs, **common)
    result = train(model, splits, recipe=tune, seed=seed + 1,
                   run_dir=os.path.join(run_dir, "phase2-unfrozen"), resume=False, verbose=verbose,
                   strategy=strategy)
    phases.append({"name": "unfrozen", "unfrozen_layers": unfrozen, "epochs_run": _epochs_run(result),
                   "learning_rate": learning_rate,
                   "trainable_weights": len(model.trainable_weights), "test": result.metrics})
    histories.append(result.history)
    return result


def _write_finetune_run(model, run_dir, task, label, info, class_names, contract, notes, phases, result,
                        seed, export):
    """Save the model and ``metrics.json`` into `run_dir` (and the SavedModel if `export`); return its path."""
    with atomic_path(os.path.join(run_dir, "model.keras"), suffix=".keras") as tmp:
        model.save(tmp)
    out_task = "segmentation" if task == "segmentation" else "classification"
    summary = {
        "model": model.name,
        "task": out_task,  # `keras-zoo export RUN_DIR` needs it: the fine-tuned model is not registered
        "base": label,
        "data": info.name,
        "class_names": class_names,
        "input_shape": list(info.input_shape),
        "input_contract": contract,
        "adaptations": notes,
        "num_examples": info.num_examples,
        "phases": phases,
        "test": result.metrics,
        "seed": seed,
        "distribution": result.summary.get("distribution"),
        "keras_version": keras.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(os.path.join(run_dir, "metrics.json"), json.dumps(summary, indent=2, default=str) + "\n")
    if not export:
        return None
    from keras_zoo.export import export_model

    # The serving contract of every export: uint8 images at the model's (here the data's) size.
    return export_model(model, os.path.join(run_dir, "export"), task=out_task, class_names=class_names)
