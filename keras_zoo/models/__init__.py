"""Model families, one file each. Importing a family module registers its models.

`keras_zoo.registry` imports every module here except `layers` and names starting with "_", so a new
family needs no edit outside its own file.
"""
