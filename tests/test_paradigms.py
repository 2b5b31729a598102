"""The paradigms beyond autoencoding and contrast: rotation prediction, deep clustering (IIC),
future prediction (recurrent forecaster), SimCLR with hard negatives, and their evaluations."""

from __future__ import annotations

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo.data import load_splits
from keras_zoo.evaluation import clustering_scores
from keras_zoo.models.iic import iic_loss
from keras_zoo.models.rotation import all_rotations, rotate90
from keras_zoo.models.simclr import hard_negative_nt_xent, nt_xent


# --------------------------------------------------------------------------- rotation


def test_rotations_are_quarter_turns_with_their_labels():
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(rotate90(image, 1))[0, ..., 0], np.rot90(image[0, ..., 0], 1))
    np.testing.assert_array_equal(np.asarray(rotate90(image, 3))[0, ..., 0], np.rot90(image[0, ..., 0], 3))
    turned, labels = all_rotations(np.concatenate([image, image + 1]))
    assert turned.shape == (8, 4, 4, 1)
    np.testing.assert_array_equal(np.asarray(labels), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(np.asarray(turned[4])[..., 0], np.rot90(image[0, ..., 0], 2))


def test_rotation_learns_to_name_the_rotation_and_refuses_non_square_images():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("rotation", input_shape=(8, 8, 1), encoder_options={"width": 8},
                                   crop=0.0, translate=0.0)
    assert model.augmenter is None
    splits = load_splits("digits", targets="none", batch_size=64, seed=0)
    images = next(iter(splits.train)).numpy()
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    history = model.fit(images, epochs=10, batch_size=64, verbose=0).history
    assert history["rotation_accuracy"][-1] > 0.5 > history["rotation_accuracy"][0]  # chance: 0.25
    turned, labels = all_rotations(images)
    probabilities = np.asarray(model.predict_rotation(turned, training=True))  # batch statistics
    assert probabilities.shape == (256, 4)
    assert np.mean(probabilities.argmax(-1) == np.asarray(labels)) > 0.5
    # The representation keeps a 2x2 layout of the 16 maps the last max-pool would have halved.
    assert model(images[:2]).shape == (2, 2 * 2 * 16)
    pooled = keras_zoo.create_model("rotation", input_shape=(8, 8, 1), encoder_options={"width": 8}, grid=None)
    assert pooled(images[:2]).shape == (2, 16)
    with pytest.raises(ValueError, match="square images"):
        keras_zoo.create_model("rotation", input_shape=(8, 6, 1))
    with pytest.raises(ValueError, match=r"grid=8 is finer than 'cnn_small'.*4x4"):
        keras_zoo.create_model("rotation", input_shape=(8, 8, 1), grid=8)


# --------------------------------------------------------------------------- clustering


def test_clustering_scores_match_clusters_to_labels_one_to_one():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_scores(labels, [2, 2, 0, 0, 1, 1]) == {"accuracy": 1.0, "nmi": 1.0, "clusters_used": 3}
    merged = clustering_scores(labels, [0, 0, 0, 0, 1, 1])
    assert merged["accuracy"] == pytest.approx(4 / 6)  # one of the merged classes is wrong
    assert 0.0 < merged["nmi"] < 1.0
    with pytest.raises(ValueError, match="equal length"):
        clustering_scores(labels, [0, 1])


def test_iic_loss_is_minus_log_k_for_confident_invariant_balanced_clusters():
    k = 4
    onehot = np.eye(k, dtype="float32")[np.arange(40) % k]
    assert float(iic_loss(onehot, onehot)) == pytest.approx(-np.log(k), abs=1e-4)
    # All examples in one cluster carry no information.
    single = np.eye(k, dtype="float32")[np.zeros(40, dtype=int)]
    assert float(iic_loss(single, single)) == pytest.approx(0.0, abs=1e-4)
    # Assignments that disagree between the two views carry none either.
    uniform = np.full((40, k), 1.0 / k, dtype="float32")
    assert float(iic_loss(onehot, uniform)) == pytest.approx(0.0, abs=1e-4)


def test_iic_assigns_clusters_from_its_probabilities():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("iic", input_shape=(8, 8, 1), clusters=5, overclustering=0,
                                   encoder_options={"width": 8})
    assert model.clusters == 5 and model.overclustering_head is None
    images = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype("float32")
    ids = model.assign(images)
    assert ids.shape == (6,) and ids.dtype == np.int32 and ids.max() < 5
    probabilities = np.asarray(model(images))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(-1), ids)
    np.testing.assert_allclose(np.asarray(model.cluster_probabilities(images)), probabilities, atol=1e-6)
    with pytest.raises(ValueError, match="overclustering must be 0"):
        keras_zoo.create_model("iic", input_shape=(8, 8, 1), overclustering=1)


# --------------------------------------------------------------------------- forecasting


def test_series_source_holds_labelled_waves():
    splits = load_splits("series:count=200,length=16", seed=0)
    assert splits.info.input_shape == (16, 1)
    assert splits.info.class_names == ("sine", "triangle", "square", "sawtooth")
    x, y = next(iter(splits.train))
    assert x.shape[1:] == (16, 1) and set(np.unique(y.numpy())) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="length=2 must be at least 4"):
        load_splits("series:length=2")


def test_forecaster_beats_copying_the_last_step_on_waves_and_rolls_out():
    keras.utils.set_random_seed(0)
    splits = load_splits("series:count=400,length=16", targets="none", batch_size=50, seed=0)
    model = keras_zoo.create_model("forecaster", input_shape=(16, 1), units=32, context=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0))
    model.fit(splits.train, epochs=12, verbose=0)
    x = np.concatenate([b.numpy() for b in splits.test])
    mse, copy_last = (np.asarray(e).mean() for e in model.errors(x))
    assert mse < 0.75 * copy_last, (mse, copy_last)  # the README's bar (0.5x) is met with its recipe
    continued = model.rollout(x[:3, :10], steps=6)
    assert continued.shape == (3, 6, 1) and np.all(np.isfinite(continued))
    out = model.forecast_outputs(x[:3])
    assert out["next_step"].shape == (3, 1) and out["state"].shape == (3, 32)
    np.testing.assert_allclose(np.asarray(model.encoder(x[:3])), np.asarray(out["state"]), atol=1e-5)
    # Images are read row by row: an 8x8x1 digit is 8 steps of 8 values.
    digits = keras_zoo.create_model("forecaster", input_shape=(8, 8, 1), units=16)
    assert digits.rollout(np.zeros((2, 4, 8, 1), "float32"), steps=4).shape == (2, 4, 8, 1)
    with pytest.raises(ValueError, match="context=8 must be smaller than the number of steps 8"):
        keras_zoo.create_model("forecaster", input_shape=(8, 8, 1), context=8)
    with pytest.raises(ValueError, match="cell must be one of"):
        keras_zoo.create_model("forecaster", input_shape=(8, 8, 1), cell="rnn")


# --------------------------------------------------------------------------- hard negatives


def test_hard_negative_loss_reduces_to_nt_xent_and_weights_close_negatives():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 16, 8)).astype("float32")
    plain, accuracy = nt_xent(a, b, 0.2)
    same, same_accuracy = hard_negative_nt_xent(a, b, 0.2, beta=0.0, tau_plus=0.0)
    assert float(same) == pytest.approx(float(plain), rel=1e-5)
    assert float(same_accuracy) == float(accuracy)
    # Up-weighting the negatives most similar to each anchor raises the loss (their terms dominate).
    hard, _ = hard_negative_nt_xent(a, b, 0.2, beta=1.0)
    assert float(hard) > float(plain)
    debiased, _ = hard_negative_nt_xent(a, b, 0.2, beta=1.0, tau_plus=0.1)
    assert np.isfinite(float(debiased)) and float(debiased) != float(hard)
    model = keras_zoo.create_model("simclr_hard", input_shape=(8, 8, 1))
    assert (model.hard_negative_beta, model.debias_tau_plus) == (1.0, 0.1)
    with pytest.raises(ValueError, match="debias_tau_plus must be a float in \\[0, 1\\), got 1.0"):
        keras_zoo.create_model("simclr", input_shape=(8, 8, 1), debias_tau_plus=1.0)
