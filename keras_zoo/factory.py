"""The factory: the public `create_model`, `list_models`, `get_spec`, `model_info` and the catalog.

It stands one floor above the registry proper and combines what the floors below keep apart: the
built-in models (`keras_zoo.registry`, filled by `keras_zoo.models`), the presets saved by `tune`
(`keras_zoo.presets`) and the shipped checkpoints (`keras_zoo.weights`).

`list_models` and `read_catalog` answer without TensorFlow: `catalog.json`, written by
``python -m keras_zoo.docs``, is a snapshot of the built-in models with their parameter counts, so
`keras-zoo list`/`info` and `model_info` never build a model to count its parameters.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import os

from keras_zoo import _validate, imagenet, presets, registry, weights
from keras_zoo.registry import TASKS, ModelSpec

log = logging.getLogger("keras_zoo")

CATALOG_PATH = os.path.join(os.path.dirname(__file__), "catalog.json")
_UNSET = object()


def _builtin_specs() -> list[ModelSpec]:
    import keras_zoo.models  # noqa: F401  (importing the package registers every family)

    return registry.builtin_specs()


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` of a built-in model or a saved preset; unknown names raise `KeyError` with
    close matches."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    builtin = {s.name: s for s in _builtin_specs()}
    if name in builtin:
        return builtin[name]
    # Presets resolve after built-in models, so a model registered later under a preset's name wins;
    # `tune` refuses to save such clashes.
    if presets.exists(name):
        return presets.preset_spec(name)
    raise _validate.unknown_name("model", name, [*builtin, *presets.list_presets()],
                                 "see `keras_zoo.list_models()` for all names")


def _preset_specs() -> list[ModelSpec]:
    """Specs of the readable presets that do not clash with a built-in name (others are skipped)."""
    specs = []
    for name in presets.list_presets():
        if registry.is_registered(name):
            log.warning("preset %r is hidden by the built-in model of the same name", name)
            continue
        try:
            specs.append(presets.preset_spec(name))
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("skipping preset %r: %s", name, err)
    return specs


def list_models(pattern: str = "*", family: str | None = None, task: str | None = None,
                pretrained: bool | None = None, presets: bool = True) -> list[str]:
    """Sorted names of registered models, filtered like timm's `list_models`.

    Args:
        pattern: fnmatch pattern over names (``"resnet*"``).
        family: keep only this family (``"cnn"``).
        task: keep only this task (one of `TASKS`).
        pretrained: ``True`` keeps models with shipped weights, ``False`` those without.
        presets: also list the presets saved by ``keras_zoo.tune(..., save_preset=NAME)`` (files in
            ``$KERAS_ZOO_HOME/presets``), filtered by the family and task of their base model.
    """
    specs = _builtin_specs()
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    families = {s.family for s in specs}
    if family is not None and family not in families:
        raise ValueError(f"family {family!r} is not one of {sorted(families)}")
    if presets:
        specs = specs + _preset_specs()
    names = [s.name for s in specs
             if fnmatch.fnmatch(s.name, pattern)
             and (family is None or s.family == family)
             and (task is None or s.task == task)]
    if pretrained is not None:
        with_weights = set(pretrained_names())
        names = [n for n in names if (n in with_weights) == pretrained]
    return sorted(names)


def pretrained_names() -> list[str]:
    """Models with pretrained weights: shipped checkpoints, or ImageNet weights downloaded on use."""
    return sorted(set(weights.pretrained_names()) | set(imagenet.names()))


def pretrained_sources(name: str) -> list[dict]:
    """Per pretrained checkpoint of `name`: its tag, where it comes from and its licence (the
    shipped checkpoints' training data's, or the ImageNet weights' upstream licence)."""
    shipped = [{"tag": e["tag"], "source": f"shipped: {e['file']} ({e['dataset']['description']})",
                "license": e["dataset"].get("licence") or "not recorded"} for e in weights.entries(name)]
    return shipped + imagenet.catalog_sources(name)


def create_model(name: str, input_shape=None, num_classes: int | None = None, *, pretrained=False,
                 sha256: str | None = None, **overrides):
    """Build a registered model, optionally with pretrained weights.

    Args:
        name: a registry name (see `list_models`).
        input_shape: input shape without the batch axis; defaults to the spec's.
        num_classes: number of output classes, where the task has classes.
        pretrained: ``True`` loads the default shipped checkpoint, a string its tag (see
            `list_models(pretrained=True)` and `keras_zoo.weights.tags(name)`), or a path or
            http(s) URL of a ``.keras`` / ``.weights.h5`` file (then `sha256` is required).
            A shipped checkpoint keeps its input shape and classes: `keras_zoo.finetune` adapts it.
        sha256: the published hash of weights given by path or URL.
        **overrides: builder keyword arguments (widths, depth, dropout, ...).

    Returns:
        A `keras.Model` named `name`.

    Example:
        >>> model = create_model("cnn_small", input_shape=(8, 8, 1), num_classes=10, dropout=0.1)
        >>> trained = create_model("cnn_small", pretrained="digits")
    """
    spec = get_spec(name)
    if pretrained is not False and pretrained is not None:
        return _create_pretrained(spec, pretrained, sha256=sha256, input_shape=input_shape,
                                  num_classes=num_classes, **overrides)
    if sha256 is not None:
        raise ValueError("sha256= goes with pretrained=<path or URL>")
    return registry.build_model(spec, input_shape, num_classes, **overrides)


def _create_pretrained(spec: ModelSpec, pretrained, *, sha256=None, input_shape=None, num_classes=None,
                       **overrides):
    """`create_model(name, pretrained=...)`: a shipped tag, or a path/URL with its sha256."""
    name = spec.name
    # ImageNet weights of the applications family (downloaded through the hash-checked cache); other
    # models fall through to their shipped tags (and the message listing them).
    if name in imagenet.names() and pretrained in ("imagenet", True) and name not in weights.pretrained_names():
        if sha256 is not None:
            raise ValueError("sha256= goes with weights from a path or URL; ImageNet weights are checked "
                             "against the hash the installed Keras lists")
        return imagenet.create_imagenet(spec, input_shape, num_classes, **overrides)
    if isinstance(pretrained, (str, os.PathLike)) and weights.is_path_or_url(pretrained):
        if sha256 is None:
            raise ValueError(f"weights from {os.fspath(pretrained)!r} need sha256= (the hash they were "
                             "published with)")
        source = os.fspath(pretrained)
        if weights.holds_weights_only(source):
            model = registry.build_model(spec, input_shape, num_classes, **overrides)
            return weights.load_weights_into(model, source, sha256)
        return weights.load_weights_from(source, sha256, name)
    if pretrained is not True and not isinstance(pretrained, str):
        raise ValueError(f"pretrained must be True, a tag, a path or an http(s) URL, got {pretrained!r}")
    entry = weights.get_entry(name, pretrained)
    contract = tuple(entry["input_contract"]["shape"])
    label = f"{name}:{entry['tag']}"
    if input_shape is not None and tuple(input_shape) != contract:
        raise ValueError(f"{label} was trained on inputs of shape {contract}, not {tuple(input_shape)}; "
                         f"use keras_zoo.finetune({name!r}, data) to adapt it to other inputs")
    # A classifier's head can be reset (num_classes=) or dropped (include_top=False, pooling=): the
    # pretrained feature extractor is kept either way, as in timm and keras-hub.
    include_top = overrides.pop("include_top", True) if spec.task == "classification" else True
    pooling = overrides.pop("pooling", _UNSET) if spec.task == "classification" else _UNSET
    if include_top not in (True, False):
        raise ValueError(f"include_top must be True or False, got {include_top!r}")
    if pooling is not _UNSET and include_top:
        raise ValueError(f"pooling={pooling!r} goes with include_top=False (a feature extractor of {label})")
    pooling = None if pooling is _UNSET else pooling  # as keras.applications: feature maps by default
    if num_classes is not None and not spec.accepts_num_classes:
        raise ValueError(f"model {name!r} ({spec.task}) does not take num_classes")
    new_head = num_classes is not None and num_classes != entry.get("num_classes")
    if new_head and spec.task != "classification":
        raise ValueError(f"{label} predicts {entry.get('num_classes')} classes, not {num_classes}; "
                         f"use keras_zoo.finetune({name!r}, data) to train a head for new classes")
    if new_head and not include_top:
        raise ValueError("num_classes= sets the size of a new head; include_top=False has no head")
    recorded = entry.get("overrides", {})
    changed = {k: v for k, v in overrides.items() if recorded.get(k, spec.defaults.get(k)) != v}
    if changed:
        raise ValueError(f"{label} was trained with {recorded or 'the default arguments'}; the overrides "
                         f"{changed} would change its architecture")
    model, _ = weights.load_entry(name, entry["tag"])
    if not include_top:
        return _with_cfg(model_layers().feature_extractor(model, label, pooling), entry,
                         head=f"none: {pooling}-pooled features" if pooling else "none: feature maps")
    if new_head:
        layers = model_layers()
        features = layers.pooled_features(model, label)
        # A fresh head (new random weights) on the pretrained features.
        outputs = layers.classification_head(features, num_classes, name="head")
        import keras

        return _with_cfg(keras.Model(model.inputs, outputs, name=name), entry,
                         head=f"reset: {num_classes} classes, untrained", num_classes=num_classes,
                         class_names=None)
    return model


def model_layers():
    """The shared blocks of the model families (`keras_zoo.models.layers`), imported on use."""
    from keras_zoo.models import layers

    return layers


def _with_cfg(model, entry: dict, **changes):
    """`model` carrying its checkpoint's manifest entry, with what was changed on top recorded."""
    model.pretrained_cfg = weights.pretrained_cfg({**entry, **changes})
    return model


# --------------------------------------------------------------------------- information and catalog


@functools.lru_cache(maxsize=4)
def _catalog_by_name(path: str, stamp: float) -> dict:
    return {e["name"]: e for e in read_catalog(path)}


def _catalogued_parameters(name: str) -> int | None:
    if not os.path.exists(CATALOG_PATH):
        return None
    entry = _catalog_by_name(CATALOG_PATH, os.path.getmtime(CATALOG_PATH)).get(name)
    return entry.get("parameters") if entry else None


def model_info(name: str, *, count: bool = False) -> dict:
    """Family, task, parameter count, default input shape, recipe and signatures of a model.

    The parameter count of a built-in model comes from the catalog (computed once, when
    ``python -m keras_zoo.docs`` writes it); a preset, a model registered after the catalog was
    written, or ``count=True`` builds the model to count them.
    """
    spec = get_spec(name)
    parameters = None if (count or spec.base) else _catalogued_parameters(name)
    if parameters is None:
        parameters = int(create_model(name).count_params())
    return {
        "name": spec.name,
        "family": spec.family,
        "task": spec.task,
        "description": spec.description,
        "parameters": parameters,
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
        "recipe": spec.recipe_name,
        "signatures": ["serving_default", *spec.signatures],
        "defaults": dict(spec.defaults),
        "pretrained": name in pretrained_names(),
        "pretrained_weights": pretrained_sources(name),
        **({"base": spec.base} if spec.base else {}),
    }


def catalog_entries() -> list[dict]:
    """A fresh snapshot of the built-in models for `catalog.json`: each model is built once to count
    its parameters."""
    entries = []
    for name in list_models(presets=False):
        info = model_info(name, count=True)
        info["defaults"] = json.loads(json.dumps(info["defaults"], default=list))
        entries.append(info)
    return entries


def read_catalog(path: str = CATALOG_PATH) -> list[dict]:
    """The built-in models as recorded in `catalog.json` (no TensorFlow)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
