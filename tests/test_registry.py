"""Registry behaviour: listing, filtering, validation errors, duplicate names."""

import pytest

import keras_zoo
from keras_zoo.registry import Int, register_model


def test_list_models_filters_by_pattern_family_and_task():
    assert keras_zoo.list_models("cnn*") == sorted(n for n in keras_zoo.list_models() if n.startswith("cnn"))
    assert set(keras_zoo.list_models(family="mlp")) == {"mlp_lecture", "mlp_wide", "mlp_deep"}
    assert "cnn_small" in keras_zoo.list_models(task="classification")
    assert keras_zoo.list_models("no_such_model*") == []


def test_list_models_rejects_unknown_family_and_task():
    with pytest.raises(ValueError, match="family 'cnnn'"):
        keras_zoo.list_models(family="cnnn")
    with pytest.raises(ValueError, match="task 'detection'"):
        keras_zoo.list_models(task="detection")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="did you mean 'cnn_small'"):
        keras_zoo.create_model("cnn_smal")


@pytest.mark.parametrize("overrides, message", [
    ({"widht": 32}, r"unknown argument\(s\) \['widht'\].*accepted: \['depth', 'dropout', 'l2', 'width'\]"),
    ({"width": -8}, "width must be an int >= 1, got -8"),
    ({"width": 0}, "width must be an int >= 1, got 0"),
    ({"dropout": 1.0}, r"dropout must be a float in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, r"dropout must be a float in \[0, 1\), got -0.1"),
    ({"input_shape": (28, 28)}, "has rank 2; this model accepts rank 3"),
    ({"input_shape": (28, 28, 0)}, "non-positive dimension"),
    ({"num_classes": 1}, "num_classes for 'cnn_small' must be an int >= 2"),
    ({"depth": 6, "input_shape": (28, 28, 1)}, "too small for 'cnn_small'"),
])
def test_bad_overrides_raise_value_error_naming_the_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        keras_zoo.create_model("cnn_small", **overrides)


def test_lecture_mlp_is_exactly_linear_relu_linear_relu_linear_softmax():
    model = keras_zoo.create_model("mlp_lecture", input_shape=(2,), num_classes=2)
    kinds = [type(l).__name__ for l in model.layers[1:]]
    assert kinds == ["Dense", "Activation", "Dense", "Activation", "Dense", "Activation"]
    acts = [l.get_config()["activation"] for l in model.layers if type(l).__name__ == "Activation"]
    assert acts == ["relu", "relu", "softmax"]


def test_lecture_cnn_applies_softmax_temperature():
    import numpy as np

    x = np.random.default_rng(0).uniform(size=(4, 12, 12, 1)).astype("float32")
    cold = keras_zoo.create_model("cnn_lecture", input_shape=(12, 12, 1), temperature=0.25)
    warm = keras_zoo.create_model("cnn_lecture", input_shape=(12, 12, 1), temperature=4.0)
    warm.set_weights(cold.get_weights())  # same weights, only tau differs
    p_cold, p_warm = cold.predict(x, verbose=0), warm.predict(x, verbose=0)
    # A higher temperature flattens the distribution: lower maximum probability, same ranking.
    assert np.all(p_warm.max(axis=1) < p_cold.max(axis=1))
    np.testing.assert_array_equal(p_warm.argmax(axis=1), p_cold.argmax(axis=1))
    # softmax(z / tau): centred log-probabilities are z / tau up to a constant, so tau 0.25 gives
    # 16 times those of tau 4 for the same logits z.
    centred = lambda p: np.log(p) - np.log(p).mean(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(centred(p_cold), 16.0 * centred(p_warm), rtol=1e-3, atol=1e-4)


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="'cnn_small' is already registered"):
        @register_model(family="cnn", task="classification", input_shape=(8, 8, 1), recipe="classifier")
        def cnn_small(input_shape, num_classes=10):  # noqa: F811
            raise AssertionError("never built")


def test_search_space_must_name_builder_defaults():
    with pytest.raises(TypeError, match="search space of 'tmp_model' names \\['nope'\\]"):
        @register_model(family="cnn", task="classification", input_shape=(8, 8, 1), recipe="classifier",
                        search_space={"nope": Int(1, 2)})
        def tmp_model(input_shape, num_classes=10, width=3):
            raise AssertionError("never built")
    assert "tmp_model" not in keras_zoo.list_models()


def test_model_info_reports_family_task_parameters_and_signatures():
    info = keras_zoo.model_info("cnn_small")
    assert info["family"] == "cnn" and info["task"] == "classification"
    assert info["parameters"] == keras_zoo.create_model("cnn_small").count_params()
    assert info["input_shape"] == [28, 28, 1]
    assert info["recipe"] == "classifier"
    assert info["signatures"][0] == "serving_default"
    assert info["defaults"]["width"] == 32
