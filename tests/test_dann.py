"""Domain-adversarial training (`dann`): the gradient reversal layer, the paper's schedules, the
two-domain training step, and `train(..., target=)` / `keras-zoo train --target` end to end.
(Build, step, save/load, export and two replicas are the generic tests' of every registered model.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import keras
import tensorflow as tf

import keras_zoo
from keras_zoo.models.dann import GradientReversal, reversal_weight
from keras_zoo.recipes import get_recipe
from keras_zoo.recipes.schedules import AnnealingDecay


def test_gradient_reversal_is_the_identity_forward_and_flips_and_scales_the_gradient():
    layer = GradientReversal(weight=0.3)
    x = tf.constant(np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(3, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(3.0 * y)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.full((3, 4), -0.9), rtol=1e-6)
    with tf.GradientTape() as tape:  # the weight given at call time wins (the scheduled lambda_p)
        tape.watch(x)
        loss = tf.reduce_sum(layer(x, weight=tf.constant(2.0)))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.full((3, 4), -2.0))
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(again, GradientReversal) and again.weight == 0.3
    with pytest.raises(ValueError, match="weight"):
        GradientReversal(weight=-1.0)


def test_the_papers_schedules_for_the_reversal_weight_and_the_learning_rate():
    lam = [float(reversal_weight(p)) for p in (0.0, 0.1, 0.5, 1.0)]
    np.testing.assert_allclose(lam, [2 / (1 + np.exp(-10 * p)) - 1 for p in (0.0, 0.1, 0.5, 1.0)], rtol=1e-6)
    assert lam[0] == 0.0 and lam[-1] > 0.999
    schedule = AnnealingDecay(0.01, total_steps=100)
    rates = [float(schedule(step)) for step in (0, 50, 100, 400)]
    np.testing.assert_allclose(rates, [0.01, 0.01 / 6 ** 0.75, 0.01 / 11 ** 0.75, 0.01 / 11 ** 0.75], rtol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(again(50)) == pytest.approx(rates[1])
    # The paper's optimizer is one recipe field away from the dann recipe.
    optimizer = get_recipe("dann").replace(optimizer="sgd", learning_rate=0.01, schedule="annealing", epochs=6)\
        .build_optimizer(steps_per_epoch=10)
    assert isinstance(optimizer.learning_rate, AnnealingDecay) or float(optimizer.learning_rate) == pytest.approx(0.01)
    optimizer.iterations.assign(50)
    assert float(optimizer.learning_rate) == pytest.approx(0.01 / (1 + 10 * 50 / 60) ** 0.75)  # of 6 x 10 steps


def _domains(n=96, seed=0):
    """A source of two classes (bright left half vs bright right half) and a target of the same
    classes shifted in colour and brightness."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype("int32")
    x = rng.uniform(0.0, 0.3, size=(n, 8, 8, 3)).astype("float32")
    x[y == 0, :, :4] += 0.6
    x[y == 1, :, 4:] += 0.6
    target = np.clip(x * np.array([0.2, 1.0, 0.6], "float32") + 0.3, 0.0, 1.0).astype("float32")
    return (x, y), (target, y)


def test_the_adversarial_step_trains_the_domain_classifier_against_the_features():
    keras.utils.set_random_seed(0)
    (xs, ys), (xt, _) = _domains()
    model = keras_zoo.create_model("dann", input_shape=(8, 8, 3), num_classes=2, total_steps=10)
    recipe = get_recipe("dann").replace(schedule="constant")
    recipe.compile(model)
    data = tf.data.Dataset.from_tensor_slices(((xs, xt), ys)).batch(32)
    logs = model.fit(data, epochs=2, verbose=0).history
    # lambda_p follows the schedule over total_steps=10 (3 steps an epoch: means of steps 0-2, 3-5).
    expected = [np.mean([2 / (1 + np.exp(-10 * s / 10)) - 1 for s in steps]) for steps in ((0, 1, 2), (3, 4, 5))]
    np.testing.assert_allclose(logs["reversal_weight"], expected, rtol=1e-5)
    assert all(v > 0.1 for v in logs["domain_loss"])
    # The reversal reaches the features: the feature extractor's gradient differs from the
    # source-only one, while the domain classifier's own weights move down its loss.
    before = [w.numpy() for w in model.domain_classifier.weights]
    model.fit(data.take(1), epochs=1, verbose=0)
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.domain_classifier.weights))
    source_only = keras_zoo.create_model("dann", input_shape=(8, 8, 3), num_classes=2, adaptation=False)
    recipe.compile(source_only)
    logs = source_only.fit(data, epochs=1, verbose=0).history
    assert logs["domain_loss"] == [0.0]
    domain_before = [w.numpy() for w in source_only.domain_classifier.weights]
    source_only.fit(data, epochs=1, verbose=0)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(domain_before, source_only.domain_classifier.weights))


def test_reversed_gradient_is_the_negative_of_the_domain_loss_gradient_on_the_features():
    keras.utils.set_random_seed(1)
    model = keras_zoo.create_model("dann", input_shape=(8, 8, 3), num_classes=2)
    x = tf.constant(np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype("float32"))
    labels = tf.constant([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    variables = model.feature_extractor.trainable_variables

    def gradient(reverse):
        with tf.GradientTape() as tape:
            features = model.feature_extractor(x)
            if reverse:
                features = model.reversal(features, weight=0.5)
            logits = model.domain_classifier(features)[:, 0]
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, variables)

    for plain, reversed_ in zip(gradient(False), gradient(True)):
        np.testing.assert_allclose(reversed_.numpy(), -0.5 * plain.numpy(), rtol=1e-5, atol=1e-8)


def test_train_with_a_target_reports_target_accuracy_and_source_only_is_one_argument_away(tmp_path):
    source, target = _domains(160)
    runs = {}
    for adaptation in (True, False):
        result = keras_zoo.train("dann", source, target=target, epochs=2, batch_size=32, resume=False,
                                 verbose=0, run_dir=str(tmp_path / str(adaptation)), num_classes=2,
                                 adaptation=adaptation)
        runs[adaptation] = result
        assert {"accuracy", "loss", "target_accuracy", "target_loss"} <= set(result.metrics)
        assert 0.0 <= result.metrics["target_accuracy"] <= 1.0
        summary = json.loads((tmp_path / str(adaptation) / "metrics.json").read_text())
        assert summary["target"]["labelled"] is True and summary["overrides"]["adaptation"] is adaptation
        # The schedule runs over the run: epochs x steps an epoch.
        assert result.model.total_steps == 2 * get_recipe("dann").replace(batch_size=32).steps_per_epoch(
            result.info.num_examples["train"])
    assert max(runs[True].history["domain_loss"]) > 0.0 and runs[False].history["domain_loss"] == [0.0, 0.0]
    # The checkpoint is a classifier: it evaluates on the target like any other.
    measured = keras_zoo.evaluate(os.path.join(runs[True].run_dir, "model.keras"), target, batch_size=32)
    assert measured["accuracy"] == pytest.approx(runs[True].metrics["target_accuracy"], abs=1e-6)


def test_a_target_is_refused_for_one_domain_models_and_for_other_channels(tmp_path):
    source, target = _domains(64)
    with pytest.raises(ValueError, match="two domains"):
        keras_zoo.train("cnn_small", source, target=target, epochs=1, verbose=0, run_dir=str(tmp_path / "a"),
                        resume=False)
    grey = (target[0][..., :1], target[1])
    with pytest.raises(ValueError, match=r"\(8, 8, 1\).*\(8, 8, 3\)"):
        keras_zoo.train("dann", source, target=grey, epochs=1, verbose=0, run_dir=str(tmp_path / "b"),
                        resume=False)


def test_cli_source_only_needs_a_target(capsys):
    from keras_zoo import cli

    assert cli.main(["train", "dann", "--data", "digits", "--source-only"]) != 0
    assert "--target" in capsys.readouterr().err


def test_the_domain_term_is_the_papers_mean_over_the_source_plus_the_mean_over_the_target():
    # Ganin et al. (JMLR 2016, eq. 9): L_y - lambda (mean_source L_d + mean_target L_d). With 3 source
    # and 5 target images, one mean over all 8 would be another number (about half of it).
    keras.utils.set_random_seed(2)
    model = keras_zoo.create_model("dann", input_shape=(8, 8, 3), num_classes=2)
    get_recipe("dann").replace(schedule="constant", learning_rate=1e-9).compile(model)
    rng = np.random.default_rng(0)
    xs = rng.uniform(size=(3, 8, 8, 3)).astype("float32")
    xt = rng.uniform(size=(5, 8, 8, 3)).astype("float32")
    logits = model.domain_classifier(model.feature_extractor(np.concatenate([xs, xt])))[:, 0].numpy()
    per_image = np.logaddexp(0.0, logits) - np.concatenate([np.zeros(3), np.ones(5)]) * logits
    expected = per_image[:3].mean() + per_image[3:].mean()
    assert abs(expected - per_image.mean()) > 0.1
    data = tf.data.Dataset.from_tensors(((xs, xt), np.array([0, 1, 0], "int32")))
    logs = model.fit(data, epochs=1, verbose=0).history
    assert logs["domain_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_the_registered_network_is_the_papers_unpadded_one_where_the_image_allows():
    model = keras_zoo.create_model("dann")  # 28x28x3: 28 -> 24 -> 12 -> 8 -> 4, 4 x 4 x 48 features
    assert tuple(model.feature_extractor.outputs[0].shape[1:]) == (4 * 4 * 48,)
    small = keras_zoo.create_model("dann", input_shape=(8, 8, 3), num_classes=2)  # "auto": same below 16x16
    assert tuple(small.feature_extractor.outputs[0].shape[1:]) == (2 * 2 * 48,)
    padded = keras_zoo.create_model("dann", padding="same")
    assert tuple(padded.feature_extractor.outputs[0].shape[1:]) == (7 * 7 * 48,)
    with pytest.raises(ValueError, match=r"padding='valid' needs images of at least 16x16.*\(8, 8, 3\)"):
        keras_zoo.create_model("dann", input_shape=(8, 8, 3), padding="valid")
    with pytest.raises(ValueError, match="padding must be one of"):
        keras_zoo.create_model("dann", padding="reflect")


def test_photos_enlarged_before_the_patch_is_cut(tmp_path):
    from PIL import Image

    from keras_zoo.data.domains import blend_arrays, blend_with_photos

    # A photo that brightens by 8 a pixel from left to right: enlarged 4x, a patch brightens by 2 a pixel.
    ramp = np.tile((np.arange(32, dtype=np.uint8) * 8)[None, :, None], (32, 1, 3))[None]
    blank = np.zeros((2, 28, 28), np.uint8)
    np.testing.assert_array_equal(np.diff(blend_arrays(blank, ramp, seed=0, photo_scale=4)[..., 0].astype(int),
                                          axis=-1), 2)
    np.testing.assert_array_equal(np.diff(blend_arrays(blank, ramp, seed=0)[..., 0].astype(int), axis=-1), 8)
    # A stroke is still |patch - digit|: the same patches (same seed), inverted where the digit is white.
    stroke = blank.copy()
    stroke[:, :, 0] = 255
    patches = blend_arrays(blank, ramp, seed=0, photo_scale=4).astype(int)
    blended = blend_arrays(stroke, ramp, seed=0, photo_scale=4).astype(int)
    np.testing.assert_array_equal(blended[:, :, 0], 255 - patches[:, :, 0])
    np.testing.assert_array_equal(blended[:, :, 1:], patches[:, :, 1:])
    # Photos too small for a patch at that scale, and scales out of range, are refused by name.
    with pytest.raises(ValueError, match="too small"):
        blend_arrays(np.zeros((1, 28, 28), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), photo_scale=2)
    with pytest.raises(ValueError, match=r"photo_scale must be a number from 1 to 64.*0\.5"):
        blend_arrays(blank, ramp, photo_scale=0.5)
    # The folder builder takes the same scale.
    for split in ("train", "test"):
        (tmp_path / "digits" / split / "7").mkdir(parents=True)
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digits" / split / "7" / "a.png")
    (tmp_path / "photos").mkdir()
    for i in range(2):
        Image.fromarray(ramp[0]).save(tmp_path / "photos" / f"p{i}.png")
    blend_with_photos(tmp_path / "digits", tmp_path / "photos", tmp_path / "out", photo_scale=4)
    written = np.asarray(Image.open(tmp_path / "out" / "train" / "7" / "a.png")).astype(int)
    np.testing.assert_array_equal(np.diff(written[..., 0], axis=-1), 2)
