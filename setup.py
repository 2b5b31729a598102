"""Packaging hook: ship the top-level `saved_models/` inside the package.

`saved_models/` at the repository root is the source of truth for the pretrained checkpoints. A
build (``pip install .``, ``pip wheel .``) copies it to ``keras_zoo/saved_models/`` in the build
tree, so an installed package finds its weights offline, from any working directory, with no
reference to the checkout it was built from. Everything else is configured in setup.cfg.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = "saved_models"
SHIPPED = (".keras", ".weights.h5", ".json")


class BuildWithSavedModels(build_py):
    def run(self):
        super().run()
        source = os.path.join(HERE, STORE)
        if not os.path.isdir(source):
            return
        target = os.path.join(self.build_lib, "keras_zoo", STORE)
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(source)):
            if name.endswith(SHIPPED) and not name.startswith("."):
                shutil.copyfile(os.path.join(source, name), os.path.join(target, name))


setup(cmdclass={"build_py": BuildWithSavedModels})
