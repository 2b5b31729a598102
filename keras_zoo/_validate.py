"""Argument checks shared by builders, recipes and pipelines: fail at build time, naming the value."""

from __future__ import annotations

import json
import math
import numbers


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def positive_ints(name: str, values, minimum: int = 1) -> tuple:
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of ints >= {minimum}, got {values!r}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    for i, v in enumerate(values):
        positive_int(f"{name}[{i}]", v, minimum)
    return tuple(int(v) for v in values)


def rate(name: str, value) -> float:
    """A probability-like rate in [0, 1): dropout, label smoothing, masking ratio."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def one_of(name: str, value, accepted) -> object:
    if value not in accepted:
        raise ValueError(f"{name} must be one of {list(accepted)}, got {value!r}")
    return value


def assignments(pairs, flag: str = "--set") -> dict:
    """``["width=64", "flip=true"]`` -> ``{"width": 64, "flip": True}``: values parse as JSON where
    they can (numbers, lists, true/false), else stay strings; dashes in keys become underscores."""
    parsed = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            parsed[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.replace("-", "_")] = value
    return parsed


def unknown_name(kind: str, name, known, see: str = "") -> KeyError:
    """A `KeyError` for an unknown registry name that suggests the closest known ones."""
    import difflib  # here, not at import: `keras-zoo list` starts without it

    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return KeyError(f"unknown {kind} {name!r}{hint}{f' ({see})' if see else ''}")


def json_tuples(value):
    """JSON lists turned back into tuples, recursively (builders take tuples for per-stage settings)."""
    if isinstance(value, list):
        return tuple(json_tuples(v) for v in value)
    return value
