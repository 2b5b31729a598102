"""Hostile inputs: untrusted SavedModels, graphs with file/Python ops, bombs, bad values."""

import json
import os

import numpy as np
import pytest

import keras
import tensorflow as tf

import keras_zoo
from keras_zoo import cli
from keras_zoo.export import export_model, load_export
from keras_zoo.export.trust import METADATA_FILE, UnsafeExportError, UntrustedExportError, record_files


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_model(model, str(tmp_path_factory.mktemp("served")), class_names=["a", "b", "c"])


class _Foreign(tf.Module):
    """A SavedModel not written by keras_zoo; with `write_to`, its serving function writes a file."""

    def __init__(self, write_to=None, python=False):
        super().__init__()
        self.scale = tf.Variable(2.0)
        self.write_to, self.python = write_to, python

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="inputs")])
    def serve(self, inputs):
        if self.write_to:
            tf.io.write_file(self.write_to, "owned")
        if self.python:
            inputs = tf.py_function(lambda t: t, [inputs], tf.float32)
        flat = tf.reshape(inputs, [-1, 64])[:, :3] * self.scale
        return {"probabilities": tf.nn.softmax(flat)}


def _save_foreign(path, **kwargs):
    module = _Foreign(**kwargs)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def _forge_metadata(path):
    """Write metadata with correct checksums, as an attacker could: provenance passes."""
    meta = {"model": "forged", "task": "classification", "input_shape": [8, 8, 1], "class_names": []}
    meta["files"] = record_files(path)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f)


def test_export_records_every_file_and_loads_unchanged(exported):
    meta = json.loads(open(os.path.join(exported, METADATA_FILE)).read())
    on_disk = sorted(os.path.relpath(os.path.join(d, n), exported).replace(os.sep, "/")
                     for d, _, names in os.walk(exported) for n in names)
    assert sorted(meta["files"]) == [p for p in on_disk if p != "assets.extra/keras_zoo.json"]
    assert "saved_model.pb" in meta["files"] and "assets/class_names.txt" in meta["files"]
    loaded, metadata = load_export(exported)
    assert metadata["class_names"] == ["a", "b", "c"]
    assert "serving_default" in loaded.signatures


def test_tampered_export_is_refused_unless_trusted(exported, tmp_path):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(exported, copy)
    with open(os.path.join(copy, "assets", "class_names.txt"), "w") as f:  # relabel the classes
        f.write("c\nb\na\n")
    with pytest.raises(UntrustedExportError, match=r"assets/class_names.txt does not match.*trust=True"):
        load_export(copy)
    load_export(copy, trust=True)  # the user vouches for it
    open(os.path.join(copy, "extra.bin"), "wb").write(b"x")
    with pytest.raises(UntrustedExportError, match="extra.bin"):
        load_export(copy)


def test_foreign_savedmodel_needs_trust(tmp_path):
    path = _save_foreign(tmp_path / "foreign")
    with pytest.raises(UntrustedExportError, match="no readable keras_zoo metadata"):
        load_export(path)
    loaded, meta = load_export(path, trust=True)
    assert meta == {}
    out = loaded.signatures["serving_default"](inputs=tf.zeros([1, 8, 8, 1]))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kind, op", [("write", "WriteFile"), ("python", "EagerPyFunc")])
def test_graph_with_file_or_python_ops_is_refused_even_trusted(tmp_path, kind, op):
    target = tmp_path / "written.txt"
    path = _save_foreign(tmp_path / "evil", **({"write_to": str(target)} if kind == "write" else {"python": True}))
    _forge_metadata(path)  # checksums match: only the deny-list stands in the way
    for trust in (False, True):
        with pytest.raises(UnsafeExportError, match=rf"op '{op}' in function '__inference_serve"):
            load_export(path, trust=trust)
    assert not target.exists()


def test_cli_predict_refuses_untrusted_and_unsafe_exports_in_one_line(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), "uint8"), mode="L").save(image)
    target = tmp_path / "written.txt"
    evil = _save_foreign(tmp_path / "evil", write_to=str(target))
    foreign = _save_foreign(tmp_path / "foreign")
    assert cli.main(["predict", foreign, str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pass trust=True (CLI: --trust)" in err
    assert cli.main(["predict", foreign, str(image), "--trust"]) == 0
    assert capsys.readouterr().out.startswith(str(image))
    assert cli.main(["predict", evil, str(image), "--trust"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'WriteFile'" in err
    assert not target.exists()


def test_evaluate_and_finetune_honour_the_trust_model(model, exported, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 40)
    metrics = keras_zoo.evaluate(exported, (x, y), split="test")
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    splits = keras_zoo.data.load_splits((x, y), batch_size=64)
    expected = model.evaluate(splits.test, return_dict=True, verbose=0)
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-4)

    foreign = _save_foreign(tmp_path / "foreign")
    with pytest.raises(UntrustedExportError):
        keras_zoo.evaluate(foreign, (x, y))
    assert "accuracy" in keras_zoo.evaluate(foreign, (x, y), trust=True)
    evil = _save_foreign(tmp_path / "evil", write_to=str(tmp_path / "w.txt"))
    with pytest.raises(UnsafeExportError):
        keras_zoo.evaluate(evil, (x, y), trust=True)
    with pytest.raises(UntrustedExportError):
        keras_zoo.finetune(foreign, (x, y), epochs=1)
    with pytest.raises(UnsafeExportError):
        keras_zoo.finetune(evil, (x, y), epochs=1, trust=True)
    with pytest.raises(ValueError, match="SavedModel export, which has no Keras layers"):
        keras_zoo.finetune(foreign, (x, y), epochs=1, trust=True)
    assert not (tmp_path / "w.txt").exists()
