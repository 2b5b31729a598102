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


def import_submodules(package: str, path, skip=()) -> list[str]:
    """Import every module of `package` (its `__path__`) except `skip` and names starting with "_".

    Plugin discovery for packages whose modules register something on import (model families,
    named recipes): a new file needs no edit elsewhere. Returns the imported module names.
    """
    import pkgutil

    names = []
    for mod in pkgutil.iter_modules(path):
        if not mod.name.startswith("_") and mod.name not in skip:
            importlib.import_module(f"{package}.{mod.name}")
            names.append(mod.name)
    return names
