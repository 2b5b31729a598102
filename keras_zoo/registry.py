"""The model registry: one `ModelSpec` per registered builder.

A family file registers each variant with `@register_model(...)`; the function's name is the model's
name. `create_model` validates the request (name, input shape, overrides) before any layer is built,
so a typo fails in milliseconds with the accepted values in the message.

This module does not import Keras or TensorFlow at import time: the CLI reads `catalog.json`, a
snapshot of the registry written by `write_catalog()`, so `keras-zoo list` answers without them.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
import json
import os
import pkgutil
from typing import Any, Callable, Mapping

TASKS = ("classification", "segmentation", "reconstruction", "generation", "contrastive", "pretext",
         "clustering", "forecasting")
CATALOG_PATH = os.path.join(os.path.dirname(__file__), "catalog.json")

# Arguments every builder receives from `create_model` rather than from `**overrides`.
_STANDARD_ARGS = ("input_shape", "num_classes")


# --------------------------------------------------------------------------- search-space entries
# Plain descriptions of tunable knobs. They live here (not in keras_zoo.tuning) so that a family
# file can declare its space without importing KerasTuner; the default of every knob is read from
# the builder's own signature, so the registry default and the tuner default cannot drift apart.


@dataclasses.dataclass(frozen=True)
class Int:
    min_value: int
    max_value: int
    step: int = 1


@dataclasses.dataclass(frozen=True)
class Float:
    min_value: float
    max_value: float
    sampling: str = "linear"  # or "log"


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple


SearchSpace = Mapping[str, "Int | Float | Choice"]


# --------------------------------------------------------------------------- the spec


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one registered model.

    Attributes:
        name: registry name, e.g. ``"cnn_small"``.
        family: family name, e.g. ``"cnn"`` (one family per file in ``keras_zoo/models``).
        task: one of `TASKS`; decides the data the recipe feeds it and the export signatures.
        builder: ``builder(input_shape, num_classes, **kwargs) -> keras.Model``.
        input_shape: default input shape, without the batch axis.
        num_classes: default number of classes (``None`` where the task has none).
        recipe: name of the default training recipe.
        signatures: names of the export signatures besides ``serving_default``.
        input_ranks: accepted ranks of ``input_shape`` (3 for images, 1 for vectors, ...).
        test_input_shape: the small shape the generic tests train and export at.
        search_space: tunable builder arguments; defaults come from the builder's signature.
        description: one line for tables and ``keras-zoo info``.
        base: for a preset (a tuned configuration saved by ``keras_zoo.tune``), the built-in model it
            configures; ``None`` for built-in models.
    """

    name: str
    family: str
    task: str
    builder: Callable[..., Any]
    input_shape: tuple
    num_classes: int | None
    recipe: str
    signatures: tuple = ()
    input_ranks: tuple = (3,)
    test_input_shape: tuple | None = None
    search_space: SearchSpace = dataclasses.field(default_factory=dict)
    description: str = ""
    base: str | None = None

    @property
    def defaults(self) -> dict:
        """Keyword defaults of the builder (the registry default of every override)."""
        params = inspect.signature(self.builder).parameters
        return {
            k: p.default
            for k, p in params.items()
            if k not in _STANDARD_ARGS and p.default is not inspect.Parameter.empty
        }

    @property
    def accepts_num_classes(self) -> bool:
        return "num_classes" in inspect.signature(self.builder).parameters

    def small_input_shape(self) -> tuple:
        return tuple(self.test_input_shape or self.input_shape)


_REGISTRY: dict[str, ModelSpec] = {}
_FAMILIES_LOADED = False


def register_model(
    *,
    family: str,
    task: str,
    input_shape: tuple,
    recipe: str,
    num_classes: int | None = None,
    signatures: tuple = (),
    input_ranks: tuple | None = None,
    test_input_shape: tuple | None = None,
    search_space: SearchSpace | None = None,
    description: str | None = None,
):
    """Decorator that registers a builder function under its own name.

    Example:
        >>> @register_model(family="cnn", task="classification", input_shape=(28, 28, 1),
        ...                 num_classes=10, recipe="classifier")
        ... def cnn_tiny(input_shape, num_classes, width=8):
        ...     ...
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(
                f"model {name!r} is already registered (by {_REGISTRY[name].builder.__module__}); "
                "registry names must be unique"
            )
        params = inspect.signature(fn).parameters
        if "input_shape" not in params:
            raise TypeError(f"builder {name!r} must take an `input_shape` argument")
        space = dict(search_space or {})
        missing = [k for k in space if k not in params or params[k].default is inspect.Parameter.empty]
        if missing:
            raise TypeError(
                f"search space of {name!r} names {missing}, which are not keyword arguments "
                f"with defaults of its builder"
            )
        doc = (fn.__doc__ or "").strip().splitlines()
        spec = ModelSpec(
            name=name,
            family=family,
            task=task,
            builder=fn,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            recipe=recipe,
            signatures=tuple(signatures),
            input_ranks=tuple(input_ranks or (len(input_shape),)),
            test_input_shape=tuple(test_input_shape) if test_input_shape else None,
            search_space=space,
            description=description if description is not None else (doc[0] if doc else ""),
        )
        _REGISTRY[name] = spec
        fn.spec = spec
        return fn

    return decorator


def _load_families() -> None:
    """Import every family module in keras_zoo.models (each registers its models on import)."""
    global _FAMILIES_LOADED
    if _FAMILIES_LOADED:
        return
    from keras_zoo import models

    for mod in pkgutil.iter_modules(models.__path__):
        if not mod.name.startswith("_") and mod.name != "layers":
            importlib.import_module(f"keras_zoo.models.{mod.name}")
    _FAMILIES_LOADED = True


def _unknown(kind: str, name: str, known) -> KeyError:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return KeyError(f"unknown {kind} {name!r}{hint} (see `keras_zoo.list_models()` for all names)")


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` registered as `name`; unknown names raise `KeyError` with close matches."""
    _load_families()
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    # Presets (tuned configurations saved as JSON files) resolve after built-in models, so a model
    # registered later under a preset's name wins; `tune` refuses to save such clashes.
    from keras_zoo.tuning import presets

    if name in presets.list_presets():
        return presets.preset_spec(name)
    raise _unknown("model", name, [*_REGISTRY, *presets.list_presets()]) from None


def list_models(
    pattern: str = "*",
    family: str | None = None,
    task: str | None = None,
    pretrained: bool | None = None,
    presets: bool = True,
) -> list[str]:
    """Sorted names of registered models, filtered like timm's `list_models`.

    Args:
        pattern: fnmatch pattern over names (``"resnet*"``).
        family: keep only this family (``"cnn"``).
        task: keep only this task (one of `TASKS`).
        pretrained: ``True`` keeps models with shipped weights, ``False`` those without.
        presets: also list the presets saved by ``keras_zoo.tune(..., save_preset=NAME)`` (files in
            ``$KERAS_ZOO_HOME/presets``), filtered by the family and task of their base model.
    """
    _load_families()
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    families = {s.family for s in _REGISTRY.values()}
    if family is not None and family not in families:
        raise ValueError(f"family {family!r} is not one of {sorted(families)}")
    specs = list(_REGISTRY.values())
    if presets:
        specs += _preset_specs()
    names = [
        s.name
        for s in specs
        if fnmatch.fnmatch(s.name, pattern)
        and (family is None or s.family == family)
        and (task is None or s.task == task)
    ]
    if pretrained is not None:
        with_weights = set(_pretrained_names())
        names = [n for n in names if (n in with_weights) == pretrained]
    return sorted(names)


def _preset_specs() -> list[ModelSpec]:
    """Specs of the readable presets that do not clash with a built-in name (others are skipped)."""
    from keras_zoo.tuning import presets

    specs = []
    for name in presets.list_presets():
        if name in _REGISTRY:
            presets.log.warning("preset %r is hidden by the built-in model of the same name", name)
            continue
        try:
            specs.append(presets.preset_spec(name))
        except (OSError, ValueError, KeyError, TypeError) as err:
            presets.log.warning("skipping preset %r: %s", name, err)
    return specs


def _pretrained_names() -> list[str]:
    # The weight store's manifest is plain JSON: reading it keeps `keras-zoo list` free of TensorFlow.
    from keras_zoo import weights

    return weights.pretrained_names()


def _check_input_shape(spec: ModelSpec, input_shape) -> tuple:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_shape for {spec.name!r} must be a tuple of positive ints, got {input_shape!r}"
        ) from None
    if len(shape) not in spec.input_ranks:
        raise ValueError(
            f"input_shape {shape} for {spec.name!r} has rank {len(shape)}; this model accepts rank "
            f"{' or '.join(map(str, spec.input_ranks))} (for example {spec.input_shape})"
        )
    if any(d <= 0 for d in shape):
        raise ValueError(f"input_shape {shape} for {spec.name!r} has a non-positive dimension")
    return shape


def validate_request(name: str, input_shape=None, num_classes=None, **overrides) -> tuple:
    """Resolve and check a build request without building anything.

    Returns ``(spec, input_shape, num_classes, kwargs)``; raises `KeyError` for an unknown name and
    `ValueError` for a bad shape, class count or override.
    """
    spec = get_spec(name)
    shape = _check_input_shape(spec, spec.input_shape if input_shape is None else input_shape)
    if num_classes is not None:
        if not spec.accepts_num_classes:
            raise ValueError(f"model {name!r} ({spec.task}) does not take num_classes")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes for {name!r} must be an int >= 2, got {num_classes!r}")
    else:
        num_classes = spec.num_classes
    accepted = spec.defaults
    unknown = [k for k in overrides if k not in accepted]
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for model {name!r}; accepted: {sorted(accepted)}"
        )
    return spec, shape, num_classes, dict(overrides)


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
    if pretrained is not False and pretrained is not None:
        from keras_zoo import weights

        return weights.create_pretrained(name, pretrained, sha256=sha256, input_shape=input_shape,
                                         num_classes=num_classes, **overrides)
    if sha256 is not None:
        raise ValueError("sha256= goes with pretrained=<path or URL>")
    spec, shape, num_classes, kwargs = validate_request(name, input_shape, num_classes, **overrides)
    if spec.accepts_num_classes:
        kwargs["num_classes"] = num_classes
    model = spec.builder(input_shape=shape, **kwargs)
    # Keras names must be unique within a graph but not globally; the registry name is what an
    # export directory and `model_info` key on. (Keras 3 keeps the name in `.name`, not `._name`; a
    # preset's builder is its base model's, so this is what names a preset's model after the preset.)
    model.name = spec.name
    return model


def model_info(name: str) -> dict:
    """Family, task, parameter count, default input shape, recipe and signatures of a model."""
    spec = get_spec(name)
    model = create_model(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "task": spec.task,
        "description": spec.description,
        "parameters": int(model.count_params()),
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
        "recipe": spec.recipe,
        "signatures": ["serving_default", *spec.signatures],
        "defaults": {k: v for k, v in spec.defaults.items()},
        "pretrained": name in _pretrained_names(),
        **({"base": spec.base} if spec.base else {}),
    }


# --------------------------------------------------------------------------- catalog for the CLI


def catalog_entries() -> list[dict]:
    """Registry snapshot used by `keras-zoo list`/`info` without importing TensorFlow."""
    entries = []
    for name in list_models(presets=False):
        info = model_info(name)
        info["defaults"] = json.loads(json.dumps(info["defaults"], default=list))
        entries.append(info)
    return entries


def read_catalog(path: str = CATALOG_PATH) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
