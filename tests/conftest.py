import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Presets saved by `keras-zoo tune --save-preset` live in $KERAS_ZOO_HOME and are listed beside the
# built-in models; the tests must see only the presets they write themselves.
os.environ["KERAS_ZOO_HOME"] = tempfile.mkdtemp(prefix="keras_zoo_test_home_")


# Files whose tests take minutes go first: the worker processes (pytest-xdist, whole files per
# worker) then finish together instead of one of them starting a long file at the end.
_LONGEST_FIRST = ("test_distribute.py", "test_notebooks.py", "test_cli.py", "test_models.py", "test_tuning.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept
