import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Presets saved by `keras-zoo tune --save-preset` live in $KERAS_ZOO_HOME and are listed beside the
# built-in models; the tests must see only the presets they write themselves.
os.environ["KERAS_ZOO_HOME"] = tempfile.mkdtemp(prefix="keras_zoo_test_home_")

# The real data the shipped checkpoints were trained on does not ship with the package. CI clones
# the repository with ../shared/data beside the checkout and installs the package (not editable),
# so the package cannot find that folder from where it is installed: point its lookups at the
# folder beside this checkout (found from this file, not the working directory) unless the
# environment already names one. Where the folder is absent the checkpoint tests skip, naming it.
SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                            "shared", "data"))
SHARED_SOURCES = {"KERAS_ZOO_MNIST_T10K": "mnist-t10k", "KERAS_ZOO_CIFAR10_TRAIN": "cifar10-train"}
for _variable, _folder in SHARED_SOURCES.items():
    if os.path.isdir(os.path.join(SHARED_DATA, _folder)):
        os.environ.setdefault(_variable, os.path.join(SHARED_DATA, _folder))


# Files whose tests take minutes go first (by their measured minutes): the worker processes
# (pytest-xdist, whole files per worker) then finish together instead of one of them starting a long
# file at the end. setup.cfg's --no-loadscope-reorder makes xdist follow this order; by default it
# hands out the files with the most tests first, which started the longest files last.
_LONGEST_FIRST = ("test_docs_examples.py", "test_notebooks.py", "test_models.py", "test_docs_examples_b.py",
                  "test_docs_model_pages.py", "test_quantize.py", "test_cli.py", "test_distribute_cluster.py",
                  "test_distribute_steps_a.py", "test_weights.py", "test_distribute_steps_b.py",
                  "test_distribute.py", "test_tuning.py", "test_applications.py", "test_export_formats.py",
                  "test_experiments.py", "test_finetune.py", "test_unet.py", "test_cifar10.py")
# A docs page with slow examples has a fast test (its blocks less the slow ones) and a slow test
# (all its blocks that run): where both are selected, the fast one would only repeat them.
_PAGE_TESTS = {"test_page_examples_run": "test_page_slow_examples_run",
               "test_model_page_examples_run": "test_model_page_slow_examples_run"}


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    def page_test(item):
        callspec = getattr(item, "callspec", None)
        return (item.originalname, callspec.params.get("page")) if callspec else None

    selected = {page_test(item) for item in items}
    repeated = [item for item in items if item.originalname in _PAGE_TESTS
                and (_PAGE_TESTS[item.originalname], page_test(item)[1]) in selected]
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        items[:] = [item for item in items if item not in repeated]
    items.sort(key=rank)  # stable: the order within a file, and of the other files, is kept
