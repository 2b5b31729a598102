"""Model families, one file each. Importing this package registers every family's models.

Every module here except `layers` and names starting with "_" is a family: it registers its models
with `keras_zoo.registry.register_model` when imported, so a new family needs no edit outside its
own file.
"""

from keras_zoo._lazy import import_submodules

FAMILIES = tuple(import_submodules(__name__, __path__, skip=("layers",)))
