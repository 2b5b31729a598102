"""Lazy public names: a package lists which submodule defines each name, and imports it on first use.

This keeps ``import keras_zoo`` (and the CLI's ``list``/``info``) free of TensorFlow until a name
that needs it is touched.
"""

from __future__ import annotations

import importlib


def lazy_names(package: str, table: dict, namespace: dict):
    """`(__getattr__, __dir__)` for `package`, resolving ``table[name]`` (a module path) on demand.

    Each resolved value is stored in `namespace` (the package's globals), so it is imported once.
    """

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace.get("__all__", ())) | set(table))

    return __getattr__, __dir__
