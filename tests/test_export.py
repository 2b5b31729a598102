"""SavedModel export: layout, versions, metadata, verification and atomic replacement."""

import json
import os

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo.export import ExportVerificationError, export_model

from serving import assert_serving_contract


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)


def test_layout_versions_and_metadata(model, tmp_path):
    first = export_model(model, str(tmp_path), class_names=["a", "b", "c"])
    second = export_model(model, str(tmp_path))
    assert first == str(tmp_path / "mlp_lecture" / "1")
    assert second == str(tmp_path / "mlp_lecture" / "2")
    assert os.path.exists(os.path.join(first, "saved_model.pb"))
    meta = json.loads((tmp_path / "mlp_lecture" / "1" / "assets.extra" / "keras_zoo.json").read_text())
    assert meta["task"] == "classification"
    assert meta["inputs"]["serving_default"] == [{"name": "inputs", "shape": [None, 8, 8, 1], "dtype": "uint8",
                                                  "description": "uint8 (batch, 8, 8, 1)", "values": [0, 255]}]
    assert meta["inputs"]["classify"][0]["dtype"] == "float32"
    assert (tmp_path / "mlp_lecture" / "1" / "assets" / "class_names.txt").read_text().split() == ["a", "b", "c"]
    loaded, _ = keras_zoo.load_export(str(tmp_path / "mlp_lecture"))  # highest version
    raw = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8, 1)).astype("uint8")
    out = loaded.signatures["serving_default"](inputs=raw)
    expected = model.predict(raw.astype("float32") / 255.0, verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(out["class_ids"].numpy(), expected.argmax(-1))
    # version 2 was exported without class names: the labels are the ids as strings
    assert [b.decode() for b in out["labels"].numpy()] == [str(k) for k in expected.argmax(-1)]
    assert_serving_contract(first)


def test_overwriting_a_version_replaces_it_whole_and_leaves_no_staging(model, tmp_path):
    export_model(model, str(tmp_path), version=3)
    marker = tmp_path / "mlp_lecture" / "3" / "stale.txt"
    marker.write_text("old export")
    export_model(model, str(tmp_path), version=3)
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path / "mlp_lecture")) == ["3"]


def test_published_files_follow_the_umask_not_tempfiles_owner_only_modes(model, tmp_path):
    """A model server running as another user must be able to read an export and its metadata."""
    previous = os.umask(0o022)
    try:
        path = export_model(model, str(tmp_path), class_names=["a", "b", "c"])
        model.save(str(tmp_path / "m.keras"))
        keras_zoo.train("mlp_lecture", "moons", epochs=1, run_dir=str(tmp_path / "run"), verbose=0,
                        resume=False)
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(path, "assets.extra", "keras_zoo.json")).st_mode & 0o777 == 0o644
    for name in ("model.keras", "best.keras", "metrics.json", "curves.png"):
        assert os.stat(tmp_path / "run" / name).st_mode & 0o777 == 0o644, name


def test_failed_verification_is_loud_and_publishes_nothing(model, tmp_path, monkeypatch):
    import tensorflow as tf

    real_load = tf.saved_model.load

    class Drifted:
        """A reloaded SavedModel whose serving outputs are off by 0.5 (a broken export)."""

        def __init__(self, loaded):
            self.signatures = {name: (lambda f: lambda **kw: {k: v + 0.5 if v.dtype.is_floating else v
                                                              for k, v in f(**kw).items()})(f)
                               for name, f in loaded.signatures.items()}

    monkeypatch.setattr(tf.saved_model, "load", lambda path, *a, **k: Drifted(real_load(path, *a, **k)))
    with pytest.raises(ExportVerificationError, match="reloaded SavedModel differs"):
        export_model(model, str(tmp_path), version=1)
    assert os.listdir(tmp_path / "mlp_lecture") == []


def test_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="version must be an int >= 1, got 0"):
        export_model(model, str(tmp_path), version=0)
    with pytest.raises(ValueError, match="unknown signature"):
        export_model(model, str(tmp_path), signatures=["nope"])
    anonymous = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="not_registered")
    with pytest.raises(ValueError, match="not registered; pass task="):
        export_model(anonymous, str(tmp_path))
    with pytest.raises(FileNotFoundError):
        keras_zoo.load_export(str(tmp_path / "missing"))
