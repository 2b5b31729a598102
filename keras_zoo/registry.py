"""The registry proper, the ground floor: one `ModelSpec` per registered builder.

A family file registers each variant with `@register_model(...)`; the function's name is the model's
name. `validate_request` checks a request (input shape, classes, overrides) before any layer is
built, so a typo fails in milliseconds with the accepted values in the message, and `build_model`
builds a model from its spec, without weights.

The registry is a table that the families fill (`keras_zoo.models` imports them). It knows nothing
of presets, weights, recipes or training: `keras_zoo.factory`, above it, combines those with it.
It imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

from keras_zoo import _validate

TASKS = ("classification", "segmentation", "reconstruction", "generation", "contrastive", "pretext",
         "clustering", "forecasting")

# Arguments every builder receives from `create_model` rather than from `**overrides`.
_STANDARD_ARGS = ("input_shape", "num_classes")


# --------------------------------------------------------------------------- search-space entries
# Plain descriptions of tunable knobs. They live here (not in keras_zoo.tuning) so that a family
# file can declare its space without importing KerasTuner; the default of every knob is read from
# the builder's own signature, so the registry default and the tuner default cannot drift apart.


@dataclasses.dataclass(frozen=True)
class Int:
    """A tunable integer knob: `min_value` to `max_value` in steps of `step`."""

    min_value: int
    max_value: int
    step: int = 1


@dataclasses.dataclass(frozen=True)
class Float:
    """A tunable float knob: `min_value` to `max_value`, sampled linearly or on a log scale."""

    min_value: float
    max_value: float
    sampling: str = "linear"  # or "log"


@dataclasses.dataclass(frozen=True)
class Choice:
    """A tunable knob that takes one of `values`."""

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
        recipe: name of the default training recipe (a preset's spec carries its own `Recipe`).
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
    recipe: Any  # a registered recipe's name, or a `Recipe` object (presets)
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
    def recipe_name(self) -> str:
        return self.recipe if isinstance(self.recipe, str) else self.recipe.name

    @property
    def accepts_num_classes(self) -> bool:
        return "num_classes" in inspect.signature(self.builder).parameters

    def small_input_shape(self) -> tuple:
        return tuple(self.test_input_shape or self.input_shape)


_REGISTRY: dict[str, ModelSpec] = {}


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


def builtin_spec(name: str) -> ModelSpec:
    """The `ModelSpec` registered as `name`; unknown names raise `KeyError` with close matches.

    Only what has been registered so far is known: `keras_zoo.models` registers the built-in
    families when it is imported. Presets and weights are combined with the registry one floor up,
    in `keras_zoo.factory`.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise _validate.unknown_name("model", name, _REGISTRY, "see `keras_zoo.list_models()` for all names") from None


def builtin_specs() -> list[ModelSpec]:
    """Every registered `ModelSpec`, in registration order."""
    return list(_REGISTRY.values())


def is_registered(name: str) -> bool:
    """Whether `name` is a built-in registered model (presets are not)."""
    return name in _REGISTRY


# Values per example beyond which a build is refused at once (2**27 floats = 512 MiB per example);
# larger inputs would run for minutes into an out-of-memory error inside TensorFlow.
MAX_INPUT_VALUES = 2**27


def _check_input_shape(spec: ModelSpec, input_shape) -> tuple:
    import numbers

    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = None
    # Integers (numpy ones too) or integral floats; 8.7 is a mistake, not 8.
    if dims is None or not all(
            not isinstance(d, bool) and (isinstance(d, numbers.Integral)
                                         or (isinstance(d, float) and d.is_integer())) for d in dims):
        raise ValueError(
            f"input_shape for {spec.name!r} must be a tuple of positive ints, got {input_shape!r}"
        ) from None
    shape = tuple(int(d) for d in dims)
    if len(shape) not in spec.input_ranks:
        raise ValueError(
            f"input_shape {shape} for {spec.name!r} has rank {len(shape)}; this model accepts rank "
            f"{' or '.join(map(str, spec.input_ranks))} (for example {spec.input_shape})"
        )
    if any(d <= 0 for d in shape):
        raise ValueError(f"input_shape {shape} for {spec.name!r} has a non-positive dimension")
    values = 1
    for d in shape:
        values *= d
    if values > MAX_INPUT_VALUES:
        raise ValueError(f"input_shape {shape} for {spec.name!r} has {values} values per example, more than "
                         f"the {MAX_INPUT_VALUES} keras_zoo builds (resize the data, e.g. image_size=(224, 224))")
    return shape


def validate_request(spec: ModelSpec, input_shape=None, num_classes=None, **overrides) -> tuple:
    """Check a build request of `spec` without building anything.

    Returns ``(input_shape, num_classes, kwargs)``; raises `ValueError` for a bad shape, class count
    or override.
    """
    name = spec.name
    shape = _check_input_shape(spec, spec.input_shape if input_shape is None else input_shape)
    if num_classes is not None:
        if not spec.accepts_num_classes:
            raise ValueError(f"model {name!r} ({spec.task}) does not take num_classes")
        import numbers

        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
            raise ValueError(f"num_classes for {name!r} must be an int >= 2, got {num_classes!r}")
        num_classes = int(num_classes)  # numpy integers are welcome
    else:
        num_classes = spec.num_classes
    accepted = spec.defaults
    unknown = [k for k in overrides if k not in accepted]
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for model {name!r}; accepted: {sorted(accepted)}"
        )
    return shape, num_classes, dict(overrides)


def build_model(spec: ModelSpec, input_shape=None, num_classes: int | None = None, **overrides):
    """A fresh (randomly initialised) model of `spec`, after `validate_request` has checked the request."""
    shape, num_classes, kwargs = validate_request(spec, input_shape, num_classes, **overrides)
    if spec.accepts_num_classes:
        kwargs["num_classes"] = num_classes
    model = spec.builder(input_shape=shape, **kwargs)
    # Keras names must be unique within a graph but not globally; the registry name is what an
    # export directory and `model_info` key on. (Keras 3 keeps the name in `.name`, not `._name`; a
    # preset's builder is its base model's, so this is what names a preset's model after the preset.)
    model.name = spec.name
    return model


