"""ONNX and LiteRT exports: same contract and outputs as the SavedModel, checked by their own runtimes."""

import json
import os
import sys

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo.export import ExportVerificationError, export_model, formats

from generic import assert_close


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras_zoo.create_model("cnn_small", input_shape=(8, 8, 1), num_classes=3)


@pytest.mark.parametrize("fmt, file", [("onnx", "model.onnx"), ("litert", "model.tflite")])
def test_export_answers_the_contract_in_its_own_runtime(model, tmp_path, fmt, file):
    path = export_model(model, str(tmp_path), class_names=["a", "b", "c"], format=fmt)
    assert path == str(tmp_path / f"cnn_small-{fmt}" / "1")
    assert sorted(os.listdir(path)) == sorted([file, "keras_zoo.json", "class_names.txt"])
    meta = json.loads(open(os.path.join(path, "keras_zoo.json")).read())
    assert meta["format"] == fmt and meta["task"] == "classification" and meta["class_names"] == ["a", "b", "c"]
    assert meta["inputs"]["serving_default"][0]["description"] == "uint8 (batch, 8, 8, 1)"
    assert meta["outputs"] == ["class_ids", "probabilities"]
    assert meta["max_relative_difference"] <= meta["tolerance"] == formats.REL_TOLERANCE

    runner = formats.load(str(tmp_path / f"cnn_small-{fmt}"))  # the model directory: highest version
    raw = np.random.default_rng(1).integers(0, 256, size=(5, 8, 8, 1)).astype("uint8")
    out = runner(inputs=raw)
    expected = model.predict(raw.astype("float32") / 255.0, verbose=0)
    assert_close(out["probabilities"], expected, what=f"{fmt} probabilities")
    np.testing.assert_array_equal(out["class_ids"], expected.argmax(-1))
    # The contract is checked before the runtime sees the input (LiteRT would resize it silently).
    with pytest.raises(ValueError, match=r"is float32 \(5, 8, 8, 1\); expected uint8 \(batch, 8, 8, 1\)"):
        runner(inputs=raw.astype("float32"))
    with pytest.raises(ValueError, match=r"is uint8 \(5, 16, 16, 1\); expected uint8 \(batch, 8, 8, 1\)"):
        runner(inputs=np.zeros((5, 16, 16, 1), "uint8"))


def test_predict_reads_onnx_and_tflite_files_and_answers_as_the_saved_model(tmp_path, capsys):
    from PIL import Image

    from keras_zoo.cli import main as cli

    keras.utils.set_random_seed(3)
    net = keras_zoo.create_model("mlp_lecture", input_shape=(8, 8, 1), num_classes=3)
    names = ["circle", "square", "cross"]
    saved = export_model(net, str(tmp_path), class_names=names)
    onnx = export_model(net, str(tmp_path), class_names=names, format="onnx")
    litert = export_model(net, str(tmp_path), class_names=names, format="litert")
    rng = np.random.default_rng(0)
    images = []
    for i in range(4):
        images.append(str(tmp_path / f"image{i}.png"))
        Image.fromarray(rng.integers(0, 256, size=(8, 8)).astype("uint8")).save(images[-1])
    rows = {}
    for target in (saved, os.path.join(onnx, "model.onnx"), os.path.join(litert, "model.tflite"), onnx):
        assert cli(["predict", target, *images]) == 0
        rows[target] = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    reference = rows.pop(saved)
    assert [r[0] for r in reference] == images and all(r[1] in names for r in reference)
    for target, got in rows.items():
        assert [r[:2] for r in got] == [r[:2] for r in reference], target
        assert all(abs(float(a[2]) - float(b[2])) <= 2e-3 for a, b in zip(got, reference)), target


def test_a_failed_check_publishes_nothing(model, tmp_path, monkeypatch):
    real_call = formats.Runner.__call__

    def drifted(self, **inputs):  # a converter that got the numbers wrong
        return {k: v + 0.5 if v.dtype.kind == "f" else v for k, v in real_call(self, **inputs).items()}

    monkeypatch.setattr(formats.Runner, "__call__", drifted)
    with pytest.raises(ExportVerificationError, match="onnx export differs from the Keras model in 'probabilities'"):
        export_model(model, str(tmp_path), format="onnx", version=1)
    assert os.listdir(tmp_path / "cnn_small-onnx") == []


class MatrixInverse(keras.layers.Layer):
    """A layer whose op (MatrixInverse) neither TFLite's built-in operators nor ONNX provide."""

    def call(self, x):
        square = keras.ops.reshape(x[:, :4], (-1, 2, 2)) + 2.0 * keras.ops.eye(2)
        return keras.ops.reshape(keras.ops.linalg.inv(square), (-1, 4))


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_a_model_that_cannot_convert_is_refused_with_the_reason(tmp_path, fmt):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Softmax()(MatrixInverse()(x))
    odd = keras.Model(inputs, outputs, name="odd")
    with pytest.raises(formats.ConversionError, match=rf"odd cannot be exported as {fmt}: .*MatrixInverse"):
        export_model(odd, str(tmp_path), task="classification", format=fmt)
    assert os.listdir(tmp_path / f"odd-{fmt}") == []


def test_bad_format_and_missing_package(model, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"format 'tflite' is not supported; accepted: \['litert', 'onnx', 'saved_model'\]"):
        export_model(model, str(tmp_path), format="tflite")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"pip install \"keras_zoo\[onnx\]\""):
        export_model(model, str(tmp_path), format="onnx")


# One default model per family, at its small test shape (the operators do not depend on the size):
# the README's table of which families convert to which format is this test's result.
FAMILIES = ["mlp_lecture", "cnn_small", "resnet20", "conv_autoencoder", "unet", "vae", "dcgan",
            "simclr"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_every_family_converts(name, fmt, tmp_path):
    from keras_zoo import registry

    spec = keras_zoo.get_spec(name)
    keras.utils.set_random_seed(0)
    net = keras_zoo.create_model(name, input_shape=spec.small_input_shape())
    path = export_model(net, str(tmp_path), format=fmt)  # converted and checked against Keras
    runner = formats.load(path)
    main = {"classification": "probabilities", "segmentation": "probabilities", "reconstruction":
            "reconstruction", "generation": "images", "contrastive": "embedding"}[spec.task]
    assert main in runner.metadata["outputs"]
    # The file on inputs of its own (not the export's probe), against the Keras model called directly
    # (not the serving function the export was checked with).
    (row,) = runner.contract
    shape = [3] + [d if d is not None else s for d, s in zip(row["shape"][1:], spec.small_input_shape())]
    rng = np.random.default_rng(7)
    if row["dtype"] == "uint8":
        x = rng.integers(0, 256, size=shape).astype("uint8")
        pixels = x.astype("float32") / 255.0
        expected = net.embed(pixels) if spec.task == "contrastive" else net(pixels, training=False)
    else:  # a generator's standard-normal noise
        x = rng.standard_normal(shape).astype(row["dtype"])
        expected = net.generate(x) if hasattr(net, "generate") else net(x, training=False)
    assert_close(runner(inputs=x)[main], np.asarray(expected), what=f"{name} {fmt} {main}")
