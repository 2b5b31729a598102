"""The unet family: shapes and strides, ResNet encoders, Dice loss, mean IoU, the `segment` signature
at sizes other than the training size, and training through `keras_zoo.train` on every mask source."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras
import keras_zoo
from keras_zoo.export.signatures import spatial_stride
from keras_zoo.recipes import get_recipe
from keras_zoo.recipes.objectives import SparseCrossentropyDice, build_metric


def test_unet_gives_per_pixel_probabilities():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("unet", input_shape=(16, 16, 3), num_classes=4, depth=2, filters=8)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 16, 16, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert model.get_layer("dec0_concat").output.shape == (None, 16, 16, 16)  # the full-resolution skip
    assert spatial_stride(model) == 4


def test_bad_unet_arguments_fail_at_build_time():
    with pytest.raises(ValueError, match="multiples of the network's stride 8"):
        keras_zoo.create_model("unet", input_shape=(20, 20, 3), depth=3)
    with pytest.raises(ValueError, match="'resnet99' is not a registered ResNet.*resnet18"):
        keras_zoo.create_model("unet", input_shape=(32, 32, 3), encoder="resnet99")
    with pytest.raises(ValueError, match="stride 32 \\(the stride of resnet18\\)"):
        keras_zoo.create_model("unet", input_shape=(48, 48, 3), encoder="resnet18")
    with pytest.raises(ValueError, match="depth"):
        keras_zoo.create_model("unet", depth=0)


@pytest.mark.parametrize("encoder, shape, stride", [("resnet20", (16, 16, 3), 4), ("resnet18", (32, 32, 3), 32)])
def test_resnet_encoders(encoder, shape, stride):
    model = keras_zoo.create_model("unet", input_shape=shape, num_classes=3, encoder=encoder, filters=8)
    assert model.output.shape == (None, *shape[:2], 3)
    assert spatial_stride(model) == stride
    backbone = model.get_layer("encoder")
    # The nested encoder holds the ResNet's weights: freezing it leaves only the decoder trainable.
    total, in_encoder = len(model.trainable_weights), len(backbone.trainable_weights)
    assert in_encoder > 0
    backbone.trainable = False
    assert 0 < len(model.trainable_weights) == total - in_encoder


def test_dice_loss_values():
    labels = np.array([[[0, 1], [1, 2]]], "int32")
    perfect = np.eye(3, dtype="float32")[labels]
    loss = SparseCrossentropyDice()
    assert float(loss(labels, perfect)) == pytest.approx(0.0, abs=1e-4)
    uniform = np.full((1, 2, 2, 3), 1 / 3, "float32")
    # CE = log 3; per class Dice (2 * |P∩T| + 1) / (|P| + |T| + 1) with |P| = 4/3.
    counts = np.array([1, 2, 1])
    dice = (2 * counts / 3 + 1) / (4 / 3 + counts + 1)
    assert float(loss(labels, uniform)) == pytest.approx(np.log(3) + 1 - dice.mean(), rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(SparseCrossentropyDice(dice_weight=0.5)))
    assert restored.dice_weight == 0.5


def test_mean_iou_and_pixel_accuracy_metrics():
    labels = np.array([[[0, 0], [1, 1]]], "int32")
    probs = np.eye(2, dtype="float32")[np.array([[[0, 1], [1, 1]]])]
    iou = build_metric("mean_iou", num_classes=2)
    iou.update_state(labels, probs)
    # class 0: 1 / 2, class 1: 2 / 3
    assert float(iou.result()) == pytest.approx((1 / 2 + 2 / 3) / 2)
    accuracy = build_metric("pixel_accuracy")
    accuracy.update_state(labels, probs)
    assert float(accuracy.result()) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="num_classes"):
        build_metric("mean_iou")
    assert get_recipe("unet_dice").loss == "sparse_crossentropy_dice"


def test_segment_signature_accepts_any_multiple_of_the_stride(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("unet", input_shape=(16, 16, 3), num_classes=3, depth=2, filters=4)
    loaded, metadata = keras_zoo.load_export(keras_zoo.export_model(model, str(tmp_path)))
    assert metadata["inputs"]["segment"][0]["shape"] == [None, None, None, 3]
    segment = loaded.signatures["segment"]
    x = np.random.default_rng(0).uniform(size=(2, 8, 28, 3)).astype("float32")
    out = segment(inputs=x)
    assert out["probabilities"].shape == (2, 8, 28, 3) and out["class_ids"].dtype == tf.int32
    np.testing.assert_array_equal(out["class_ids"], np.argmax(out["probabilities"], axis=-1))
    # At the model's own size the signature is the model.
    same = np.random.default_rng(1).uniform(size=(1, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(segment(inputs=same)["probabilities"], model(same, training=False), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples of 4"):
        segment(inputs=np.zeros((1, 10, 12, 3), "float32"))


# === Training through keras_zoo.train on each mask source ===


@pytest.mark.slow
def test_unet_trains_on_shapes_masks(tmp_path):
    result = keras_zoo.train("unet", "shapes:size=16,count=240", epochs=3, run_dir=str(tmp_path), verbose=0,
                             filters=8, depth=2, export=True)
    assert result.info.num_classes == 4  # background + 3 shapes
    assert result.model.output.shape == (None, 16, 16, 4)
    assert {"mean_iou", "pixel_accuracy", "loss"} <= set(result.metrics)
    assert result.history["loss"][-1] < result.history["loss"][0]
    # Background alone is about 70% of the pixels: the net must beat predicting it everywhere.
    assert result.metrics["pixel_accuracy"] > 0.75, result.metrics
    with open(os.path.join(str(tmp_path), "metrics.json")) as f:
        assert json.load(f)["recipe"]["name"] == "unet"
    loaded, _ = keras_zoo.load_export(result.export_path)
    assert loaded.signatures["segment"](inputs=np.zeros((1, 32, 48, 3), "float32"))["class_ids"].shape == (1, 32, 48)


@pytest.mark.slow
def test_unet_trains_on_a_folder_of_images_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for k in range(24):
        mask = np.zeros((16, 16), np.uint8)
        top, left = rng.integers(0, 8, 2)
        mask[top:top + 8, left:left + 8] = 1 + k % 2
        image = np.where(mask[..., None] > 0, 200, 30).astype(np.uint8).repeat(3, axis=-1)
        Image.fromarray(image).save(data / "images" / f"{k}.png")
        Image.fromarray(mask, "L").save(data / "masks" / f"{k}.png")
    result = keras_zoo.train("unet", str(data), epochs=2, run_dir=str(tmp_path / "run"), verbose=0,
                             filters=4, depth=2)
    assert result.info.num_classes == 3 and result.model.output.shape == (None, 16, 16, 3)
    assert np.isfinite(result.metrics["loss"]) and 0.0 <= result.metrics["mean_iou"] <= 1.0


@pytest.mark.slow
def test_unet_trains_on_oxford_pets_under_tfds_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=8):
        result = keras_zoo.train("unet", "oxford_iiit_pet", epochs=1, run_dir=str(tmp_path), verbose=0,
                                 data_options={"image_size": (32, 32)}, filters=4, depth=2)
    assert result.info.class_names == ("pet", "background", "border")
    assert result.model.output.shape == (None, 32, 32, 3)
    assert np.isfinite(result.metrics["loss"])
