"""Training recipes: a `Recipe` dataclass and named recipes registered like models.

Named recipes live in this package's modules (`classification.py`, ...), one small function-free
dataclass instance each, so they read and diff like configuration; `recipe.py` holds the dataclass
and the table, `objectives.py` the losses and metrics, `callbacks.py` the training callbacks.
Importing this package registers every named recipe (a new recipe module needs no edit here).
"""

from __future__ import annotations

from keras_zoo import _validate
from keras_zoo._lazy import import_submodules
from keras_zoo.recipes.recipe import (OPTIMIZERS, PRECISIONS, SCHEDULES, TARGETS, Recipe,  # noqa: F401
                                      register_recipe, registered_recipes)

import_submodules(__name__, __path__, skip=("recipe", "objectives", "callbacks", "schedules"))


def get_recipe(name) -> Recipe:
    """A registered recipe by name (a `Recipe` passes through)."""
    if isinstance(name, Recipe):
        return name
    table = registered_recipes()
    if name not in table:
        raise _validate.unknown_name("recipe", name, table, f"registered: {sorted(table)}")
    return table[name]


def list_recipes() -> list[str]:
    """Sorted names of the registered recipes."""
    return sorted(registered_recipes())
