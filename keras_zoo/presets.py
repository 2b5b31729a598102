"""Presets: a tuned configuration of a registered model, saved under a name of its own.

A preset is one small JSON file, ``$KERAS_ZOO_HOME/presets/<name>.json`` (default home
``~/.keras/keras_zoo``), holding the base model, the builder overrides and recipe changes the search
found, its score and objective, the data it was tuned on, the date and the keras_zoo version.
`preset_spec` turns a file into a `ModelSpec` that carries its own `Recipe`; the factory
(`keras_zoo.factory.get_spec`) looks presets up after the built-in models, so ``create_model(name)``,
``train(name, ...)`` and ``list_models()`` treat a preset like a built-in model.

Reading and writing records uses only the standard library: ``keras-zoo list`` reads presets
without TensorFlow (and imports what only writing needs when it writes).
"""

from __future__ import annotations

import glob
import json
import os
import re

from keras_zoo import _validate

FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
# Recipe fields a preset may change; everything else comes from the base model's recipe.
RECIPE_FIELDS = ("learning_rate", "weight_decay", "batch_size", "augment")


def home() -> str:
    """The keras_zoo home folder: ``$KERAS_ZOO_HOME`` or ``~/.keras/keras_zoo``."""
    return os.path.abspath(os.path.expanduser(
        os.environ.get("KERAS_ZOO_HOME") or os.path.join("~", ".keras", "keras_zoo")))


def preset_dir() -> str:
    """Where preset files live: ``<home>/presets``."""
    return os.path.join(home(), "presets")


def check_name(name: str) -> str:
    """A preset name must be a plain identifier-like file stem (no paths)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"preset name {name!r} is not valid: use letters, digits, '_', '.' or '-', starting with "
            "a letter or '_' (e.g. 'cnn_small_digits')")
    return name


def preset_path(name: str) -> str:
    """Where the preset `name` is stored: ``$KERAS_ZOO_HOME/presets/<name>.json``."""
    return os.path.join(preset_dir(), f"{check_name(name)}.json")


def _check_record(record: dict, path: str) -> dict:
    missing = [k for k in ("name", "base_model", "model_overrides", "recipe") if k not in record]
    if missing:
        raise ValueError(f"preset file {path} lacks {missing}; it is not a keras_zoo preset")
    if not isinstance(record["model_overrides"], dict) or not isinstance(record["recipe"], dict):
        raise ValueError(f"preset file {path}: model_overrides and recipe must be JSON objects")
    unknown = sorted(set(record["recipe"]) - set(RECIPE_FIELDS))
    if unknown:
        raise ValueError(f"preset file {path} changes recipe field(s) {unknown}; a preset may change "
                         f"{list(RECIPE_FIELDS)}")
    return record


def exists(name: str) -> bool:
    """Whether a preset file named `name` exists (an invalid name is simply not a preset)."""
    return isinstance(name, str) and bool(_NAME.match(name)) and os.path.exists(preset_path(name))


def read_preset(name: str) -> dict:
    """The record of preset `name`; `KeyError` when there is no such file."""
    path = preset_path(name)
    if not os.path.exists(path):
        raise KeyError(f"no preset {name!r} in {preset_dir()}")
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    record = _check_record(record, path)
    if record["name"] != name:
        raise ValueError(f"preset file {path} names itself {record['name']!r}, not {name!r}")
    return record


def list_presets() -> list[str]:
    """Sorted names of the preset files in `preset_dir()` (unreadable files are skipped with a warning)."""
    names = []
    for path in sorted(glob.glob(os.path.join(preset_dir(), "*.json"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        if _NAME.match(stem):
            names.append(stem)
    return names


def read_presets() -> list[dict]:
    """Every readable preset record; a broken file is skipped with a warning, never fatal."""
    records = []
    for name in list_presets():
        try:
            records.append(read_preset(name))
        except (OSError, ValueError, KeyError) as err:
            import logging

            logging.getLogger("keras_zoo").warning("skipping preset %r: %s", name, err)
    return records


def write_preset(name: str, *, base_model: str, model_overrides: dict, recipe_changes: dict,
                 objective: str, direction: str, score: float | None, data: str,
                 family: str, task: str, input_shape, num_classes, parameters: int | None = None,
                 test_metrics: dict | None = None, default: dict | None = None,
                 search: dict | None = None) -> str:
    """Write a preset file atomically and return its path.

    The caller (``tune``) checks that `name` does not clash with a registered model.
    """
    import datetime

    from keras_zoo._io import atomic_write_text
    from keras_zoo._version import __version__

    unknown = sorted(set(recipe_changes) - set(RECIPE_FIELDS))
    if unknown:
        raise ValueError(f"recipe changes {unknown} cannot be stored in a preset; accepted: "
                         f"{list(RECIPE_FIELDS)}")
    record = {
        "format": FORMAT_VERSION,
        "name": check_name(name),
        "base_model": base_model,
        "family": family,
        "task": task,
        "model_overrides": model_overrides,
        "recipe": recipe_changes,
        "input_shape": list(input_shape) if input_shape is not None else None,
        "num_classes": num_classes,
        "parameters": parameters,
        "objective": {"name": objective, "direction": direction},
        "score": score,
        "test": test_metrics or {},
        "default": default or {},
        "data": data,
        "search": search or {},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "keras_zoo_version": __version__,
    }
    path = preset_path(name)
    atomic_write_text(path, json.dumps(record, indent=2, default=_jsonable) + "\n")
    return path


def delete_preset(name: str) -> None:
    """Remove preset `name` (`KeyError` when it does not exist)."""
    path = preset_path(name)
    if not os.path.exists(path):
        raise KeyError(f"no preset {name!r} in {preset_dir()}")
    os.remove(path)


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{value!r} is not JSON serializable")


def catalog_entry(record: dict) -> dict:
    """A `keras-zoo list`/`info` row for a preset, shaped like a catalog entry (no TensorFlow)."""
    score = record.get("score")
    objective = (record.get("objective") or {}).get("name", "score")
    score_text = f"{objective} {score:.4g}" if isinstance(score, (int, float)) else "no score"
    return {
        "name": record["name"],
        "family": record.get("family", "?"),
        "task": record.get("task", "?"),
        "description": f"preset of {record['base_model']} tuned on {record.get('data', '?')} "
                       f"({score_text}, {record.get('date', '?')[:10]})",
        "parameters": record.get("parameters") or 0,
        "input_shape": record.get("input_shape") or [],
        "num_classes": record.get("num_classes"),
        "recipe": f"preset:{record['name']}",
        "defaults": record.get("model_overrides", {}),
        "pretrained": False,
        "preset": record,
    }


# --------------------------------------------------------------------------- presets as registry specs

_SPEC_CACHE: dict = {}


def preset_spec(name: str):
    """The `ModelSpec` of preset `name`, carrying its own `Recipe`.

    Its builder is the base model's builder with the preset's overrides as signature defaults, so
    ``spec.defaults`` shows the tuned values and ``create_model(name, width=...)`` can still override
    them. Its recipe, named ``"preset:<name>"``, is the base recipe with the preset's changes; it
    travels in ``spec.recipe`` (``get_recipe`` passes a `Recipe` through). Specs are cached per file
    modification time, so a preset saved again in the same process is read again.
    """
    path = preset_path(name)
    stamp = (path, os.path.getmtime(path)) if os.path.exists(path) else None
    cached = _SPEC_CACHE.get(name)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    spec = _make_spec(read_preset(name))
    _SPEC_CACHE[name] = (stamp, spec)
    return spec


def _make_spec(record: dict):
    import dataclasses
    import functools
    import inspect

    import keras_zoo.models  # noqa: F401  (registers the built-in families)
    from keras_zoo import registry
    from keras_zoo.recipes import get_recipe

    name, base_name = record["name"], record["base_model"]
    if registry.is_registered(name):
        raise ValueError(f"preset {name!r} clashes with the built-in model of the same name")
    if not registry.is_registered(base_name):
        raise KeyError(f"preset {name!r} configures {base_name!r}, which is not a registered model")
    base = registry.builtin_spec(base_name)
    # JSON has no tuples; builders take tuples for per-stage settings.
    overrides = {k: _validate.json_tuples(v) for k, v in record["model_overrides"].items()}
    accepted = base.defaults
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"preset {name!r} overrides {unknown}, which {base_name!r} does not accept; "
                         f"accepted: {sorted(accepted)}")
    num_classes = record.get("num_classes") if base.accepts_num_classes else None

    signature = inspect.signature(base.builder)
    params = []
    for p in signature.parameters.values():
        if p.name in overrides:
            p = p.replace(default=overrides[p.name])
        elif p.name == "num_classes" and num_classes is not None:
            p = p.replace(default=num_classes)
        params.append(p)

    @functools.wraps(base.builder)
    def builder(*args, **kwargs):
        return base.builder(*args, **{**overrides, **kwargs})

    builder.__signature__ = signature.replace(parameters=params)
    builder.__name__ = name

    recipe = get_recipe(base.recipe)
    changes = dict(record["recipe"])
    if "augment" in changes:
        changes["augment"] = tuple(changes["augment"])
    recipe = recipe.replace(name=f"preset:{name}", description=(
        f"{recipe.name} with the changes tuned for preset {name!r}: {changes or 'none'}"), **changes)

    input_shape = record.get("input_shape")
    entry = catalog_entry(record)
    spec = dataclasses.replace(
        base, name=name, builder=builder, recipe=recipe, base=base_name,
        input_shape=tuple(input_shape) if input_shape else base.input_shape,
        num_classes=num_classes if num_classes is not None else base.num_classes,
        description=entry["description"])
    builder.spec = spec
    return spec
