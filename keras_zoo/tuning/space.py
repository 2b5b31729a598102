"""Search spaces: a model's architecture knobs (from its registry spec) plus the recipe knobs.

`search_space(name)` returns an ordered ``{hp_name: Param}``. Architecture knobs come from
``spec.search_space`` with their defaults read from the builder's signature; recipe knobs are the same
for every model (learning rate, weight decay, batch size, and augmentation strength where the recipe
augments), with the recipe's values as defaults. `Param.declare(hp)` registers one knob on a KerasTuner
``HyperParameters`` with ``default=`` that value, so a trial at defaults builds exactly
``create_model(name)`` and trains with exactly the recipe.

No KerasTuner import here: `declare` receives the ``hp`` object.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers

from keras_zoo import _validate
from keras_zoo.factory import get_spec
from keras_zoo.registry import Choice, Float, Int

# Recipe knobs every model can tune; `augment_strength` only where the recipe augments.
RECIPE_KNOBS = ("learning_rate", "weight_decay", "batch_size", "augment_strength")
AUGMENT_STRENGTHS = (0.0, 0.5, 1.0, 1.5, 2.0)
_KT_SCALARS = (bool, int, float, str)


def _round(x: float) -> float:
    """3 significant digits, so derived bounds read well in tables and presets."""
    return float(f"{x:.3g}")


@dataclasses.dataclass(frozen=True)
class Param:
    """One tunable knob.

    Attributes:
        name: hyperparameter name (the builder argument or the recipe knob).
        target: ``"model"`` (a builder argument) or ``"recipe"`` (a recipe knob).
        domain: `Int`, `Float` or `Choice` from `keras_zoo.registry`.
        default: the registry or recipe value; the first trial of every search uses it.
    """

    name: str
    target: str
    domain: object
    default: object

    def declare(self, hp):
        """Register this knob on KerasTuner's `hp` and return the (decoded) value of the trial."""
        d = self.domain
        if isinstance(d, Int):
            return hp.Int(self.name, d.min_value, d.max_value, step=d.step, default=self.default)
        if isinstance(d, Float):
            return hp.Float(self.name, d.min_value, d.max_value, sampling=d.sampling,
                            default=float(self.default))
        values, default = _encode_choice(d.values, self.default)
        return self.decode(hp.Choice(self.name, values, default=default))

    @property
    def encoded(self) -> bool:
        """Choices KerasTuner cannot hold (tuples, None, mixed types) travel as JSON strings."""
        return isinstance(self.domain, Choice) and _needs_encoding(self.domain.values)

    def decode(self, value):
        """A trial's stored value as the builder/recipe takes it."""
        # A decoded value may come back (values() decodes, split_values() decodes again): a string
        # that is itself one of the choices (the "all" of (0, 20, "all")) is already decoded.
        if self.encoded and isinstance(value, str) and value not in self.domain.values:
            return _validate.json_tuples(json.loads(value))
        return value

    def describe(self) -> str:
        d = self.domain
        if isinstance(d, Int):
            return f"int {d.min_value}..{d.max_value} step {d.step}"
        if isinstance(d, Float):
            return f"float {d.min_value:g}..{d.max_value:g} ({d.sampling})"
        return "one of " + ", ".join(map(str, d.values))


def _needs_encoding(values) -> bool:
    kinds = {type(v) for v in values}
    if not kinds <= set(_KT_SCALARS):
        return True
    # Ints and floats mix into floats; other mixes (a bool among ints, str among numbers) are encoded.
    return len(kinds) > 1 and kinds != {int, float}


def _encode_choice(values, default):
    if _needs_encoding(values):
        return [json.dumps(v) for v in values], json.dumps(default)
    if {type(v) for v in values} == {int, float}:
        return [float(v) for v in values], float(default)
    return list(values), default


def _check_default(model: str, p: Param) -> None:
    d, v = p.domain, p.default
    where = f"search space of {model!r}: {p.name}"
    if isinstance(d, Choice):
        if not d.values:
            raise ValueError(f"{where} is an empty Choice")
        if v not in tuple(d.values):
            raise ValueError(f"{where} default {v!r} is not one of the choices {tuple(d.values)}; "
                             "the default must be searchable so the first trial is the default model")
        return
    if isinstance(d, (Int, Float)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"{where} default {v!r} is not a number, so it cannot be {type(d).__name__}")
        if isinstance(d, Int) and not isinstance(v, numbers.Integral):
            raise ValueError(f"{where} default {v!r} is not an int; declare Float or Choice")
        if not d.min_value <= v <= d.max_value:
            raise ValueError(f"{where} default {v!r} is outside {d}; widen the range to include it")
        if isinstance(d, Float) and d.sampling == "log" and d.min_value <= 0:
            raise ValueError(f"{where}: log sampling needs min_value > 0, got {d.min_value}")
        return
    raise ValueError(f"{where} is {d!r}; expected Int, Float or Choice from keras_zoo.registry")


def recipe_knobs(recipe) -> dict:
    """The default recipe knobs of `recipe`, as `Param`s with the recipe's values as defaults."""
    lr, wd, bs = recipe.learning_rate, recipe.weight_decay, recipe.batch_size
    knobs = {
        "learning_rate": Param("learning_rate", "recipe",
                               Float(_round(lr / 10), _round(lr * 10), "log"), lr),
        "weight_decay": Param("weight_decay", "recipe", Choice(
            (0.0, 1e-5, 1e-4, 1e-3) if wd == 0 else
            tuple(sorted({0.0, _round(wd / 10), float(wd), _round(wd * 10)}))), float(wd)),
        "batch_size": Param("batch_size", "recipe",
                            Choice(tuple(sorted({max(1, bs // 2), bs, bs * 2}))), bs),
    }
    if recipe.augment:
        knobs["augment_strength"] = Param("augment_strength", "recipe", Choice(AUGMENT_STRENGTHS), 1.0)
    return knobs


def search_space(name: str, recipe=None, space: dict | None = None) -> dict:
    """The search space of model `name`: ``{hp_name: Param}``, architecture knobs first.

    Args:
        name: a registry name (or preset).
        recipe: recipe name or `Recipe`; defaults to the model's own.
        space: changes to the default space: ``{knob: Int|Float|Choice}`` replaces or adds a knob
            (builder keyword arguments with defaults, or one of `RECIPE_KNOBS`), ``{knob: None}``
            removes it (it stays at its default).

    Example:
        >>> search_space("cnn_small")["width"].default
        32
    """
    from keras_zoo.recipes import get_recipe

    spec = get_spec(name)
    recipe = get_recipe(recipe if recipe is not None else spec.recipe)
    defaults = spec.defaults
    clash = sorted(set(defaults) & set(RECIPE_KNOBS))
    if clash:
        raise ValueError(f"builder of {name!r} has argument(s) {clash} named like recipe knobs; "
                         "rename them so the search space can tell them apart")
    params = {k: Param(k, "model", d, defaults[k]) for k, d in spec.search_space.items()}
    recipe_params = recipe_knobs(recipe)
    params.update(recipe_params)
    for key, domain in (space or {}).items():
        if key in defaults:
            target, default = "model", defaults[key]
        elif key in recipe_params or key in RECIPE_KNOBS:
            if key == "augment_strength" and not recipe.augment:
                raise ValueError(f"recipe {recipe.name!r} does not augment, so augment_strength "
                                 "cannot be tuned")
            target, default = "recipe", recipe_params[key].default
        else:
            raise ValueError(f"{key!r} is not a tunable knob of {name!r}; accepted: builder arguments "
                             f"{sorted(defaults)} and recipe knobs {list(recipe_params)}")
        if domain is None:
            params.pop(key, None)
        else:
            params[key] = Param(key, target, domain, default)
    for p in params.values():
        _check_default(name, p)
    return params


def defaults_of(params: dict) -> dict:
    """``{name: default}`` of a search space."""
    return {k: p.default for k, p in params.items()}


def split_values(params: dict, values: dict, recipe) -> tuple[dict, dict]:
    """``(builder_overrides, recipe_changes)`` for a trial's values (stored or decoded).

    `recipe_changes` are `Recipe` fields: ``augment_strength`` becomes the scaled ``augment`` tuple.
    """
    overrides, changes = {}, {}
    for k, p in params.items():
        if k not in values:
            continue
        v = p.decode(values[k])
        if p.target == "model":
            overrides[k] = v
        elif k == "augment_strength":
            changes["augment"] = scale_augment(recipe.augment, v)
        else:
            changes[k] = v
    return overrides, changes


def trial_recipe(recipe, changes: dict):
    """`recipe` with a trial's recipe changes (the recipe itself when the changes are its values)."""
    same = all(getattr(recipe, k) == v for k, v in changes.items())
    return recipe if same else recipe.replace(**changes)


def scale_augment(augment: tuple, strength: float) -> tuple:
    """The recipe's augmentations with every strength multiplied by `strength`.

    ``1.0`` is the recipe itself; ``0.0`` turns augmentation off. Augmentations without a strength
    (flips) are kept as they are for any strength above zero.
    """
    augment = tuple(augment)
    if strength == 1.0:
        return augment
    if strength == 0.0:
        return ()
    scaled = []
    for item in augment:
        name, _, text = item.partition(":")
        base = float(text) if text else _default_strength(name)
        scaled.append(item if base is None else f"{name}:{_round(base * strength):g}")
    return tuple(scaled)


def _default_strength(name: str):
    """The strength an augmentation uses when the recipe names it without one (None: it takes none)."""
    from keras_zoo.data.augment import AUGMENTATIONS

    factory = AUGMENTATIONS.get(name)
    if factory is None:
        return None
    try:
        layer = factory(None, seed=0)
        factory(0.5, seed=0)  # flips refuse any strength
    except ValueError:
        return None
    for attr in ("factor", "height_factor"):
        value = getattr(layer, attr, None)
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            value = max(abs(float(v)) for v in value)
        value = float(value)
        if math.isfinite(value) and value > 0:
            return value
    return None
