import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Presets saved by `keras-zoo tune --save-preset` live in $KERAS_ZOO_HOME and are listed beside the
# built-in models; the tests must see only the presets they write themselves.
os.environ["KERAS_ZOO_HOME"] = tempfile.mkdtemp(prefix="keras_zoo_test_home_")
