"""The resnet family: published sizes, backbone use, the option-A shortcut and the recipe."""

from __future__ import annotations

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo.models.resnet import PadShortcut, resnet_features
from keras_zoo.recipes import get_recipe


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name, expected", [
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)])
def test_imagenet_resnets_have_the_reference_parameter_counts(name, expected):
    model = keras_zoo.create_model(name, input_shape=(224, 224, 3), num_classes=1000)
    assert trainable(model) == expected


@pytest.mark.parametrize("name, expected", [
    ("resnet20", 269_722), ("resnet32", 464_154), ("resnet56", 853_018)])
def test_cifar_resnets_have_the_published_sizes(name, expected):
    # He et al. (2016), table 6: 0.27 M, 0.46 M, 0.85 M with option-A (parameter-free) shortcuts.
    model = keras_zoo.create_model(name, input_shape=(32, 32, 3), num_classes=10)
    assert trainable(model) == expected
    depth = int(name[len("resnet"):])
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert len(convs) + len(dense) == depth  # 6n + 2 weighted layers


def test_projection_shortcuts_add_the_1x1_convolutions():
    pad = keras_zoo.create_model("resnet20")
    projection = keras_zoo.create_model("resnet20", shortcut="projection")
    # Two down-sampling blocks, each with a 1x1 conv (16->32, 32->64) and a batch-norm.
    assert trainable(projection) - trainable(pad) == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


def test_pad_shortcut_subsamples_and_zero_pads_channels():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    y = np.asarray(PadShortcut(6, strides=2)(x))
    assert y.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 4:].any()


@pytest.mark.parametrize("name, strides", [
    ("resnet18", (2, 4, 8, 16, 32)), ("resnet50", (2, 4, 8, 16, 32)), ("resnet20", (1, 2, 4))])
def test_stage_features_have_the_expected_strides(name, strides):
    model = keras_zoo.create_model(name, input_shape=(64, 64, 3), include_top=False, pooling=None)
    features = resnet_features(model)
    sizes = [o.shape[1] for o in features.outputs]
    assert sizes == [64 // s for s in strides]
    x = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype("float32")
    maps = features(x, training=False)
    # The feature model shares the backbone's weights: its last map is the backbone's output.
    np.testing.assert_allclose(np.asarray(maps[-1]), np.asarray(model(x, training=False)), atol=1e-5)


def test_include_top_and_pooling():
    top = keras_zoo.create_model("resnet20", num_classes=7)
    assert top.output.shape == (None, 7)
    assert top.get_layer("pool").output.shape == (None, 64)
    for pooling, shape in (("avg", (None, 64)), ("max", (None, 64)), (None, (None, 8, 8, 64))):
        model = keras_zoo.create_model("resnet20", include_top=False, pooling=pooling)
        assert model.output.shape == shape
    headless = keras_zoo.create_model("resnet18", input_shape=(32, 32, 3), include_top=False)
    assert headless.output.shape == (None, 512)
    assert trainable(headless) == 11_689_512 - (512 * 1000 + 1000)


def test_bad_arguments_fail_at_build_time_with_the_value():
    with pytest.raises(ValueError, match="pooling"):
        keras_zoo.create_model("resnet20", include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="shortcut"):
        keras_zoo.create_model("resnet20", shortcut="dense")
    with pytest.raises(ValueError, match="too small"):
        keras_zoo.create_model("resnet18", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="width"):
        keras_zoo.create_model("resnet18", width=0)
    with pytest.raises(ValueError, match="include_top"):
        keras_zoo.create_model("resnet18", include_top="yes")
    with pytest.raises(ValueError, match="resnet_9"):
        features = keras_zoo.create_model("resnet20", include_top=False)
        resnet_features(features, layer_names=["resnet_9"])


def test_resnet_recipe_is_the_papers_recipe():
    recipe = get_recipe("resnet")
    assert (recipe.optimizer, recipe.learning_rate, recipe.momentum) == ("sgd", 0.1, 0.9)
    assert recipe.weight_decay > 0 and recipe.warmup_epochs >= 1 and recipe.schedule == "cosine"
    assert set(recipe.augment) == {"crop", "flip"}
    model = keras_zoo.create_model("resnet20", input_shape=(8, 8, 3), num_classes=3)
    recipe.replace(epochs=10, label_smoothing=0.1).compile(model, steps_per_epoch=5)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    # Linear warm-up from 0 over 2 epochs (10 steps), then cosine decay to 0.
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.05, rel=1e-3)
    assert float(schedule(10)) == pytest.approx(0.1, rel=1e-3)
    assert float(schedule(50)) == pytest.approx(0.0, abs=1e-6)
    assert model.loss.label_smoothing == 0.1
