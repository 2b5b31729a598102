"""GAN family: two optimizers, critic steps, gradient penalty, save/reload, NaN guard, export, FD."""

import os

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import evaluation
from keras_zoo.models.gan import WGANGP

SHAPE = (8, 8, 1)
SMALL = dict(input_shape=SHAPE, latent_dim=8, width=8)


def _images(n=32, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *SHAPE)).astype("float32")


def test_compile_gives_the_discriminator_its_own_optimizer_with_the_same_config():
    model = keras_zoo.create_model("dcgan", **SMALL)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.5)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.5))
    assert model.d_optimizer is not model.optimizer
    assert type(model.d_optimizer) is keras.optimizers.Adam
    assert model.d_optimizer.get_config() == model.optimizer.get_config()
    # Each optimizer holds slots for its own player only.
    g_vars = {v.path for v in model.generator.trainable_variables}
    d_vars = {v.path for v in model.discriminator.trainable_variables}

    def slots(optimizer):  # Adam's two moments per variable, named after it
        return {v.path.split("/", 1)[1].rsplit("_", 1)[0] for v in optimizer.variables
                if v.path.endswith(("_momentum", "_velocity"))}

    assert slots(model.optimizer) == {p.replace("/", "_") for p in g_vars}
    assert slots(model.d_optimizer) == {p.replace("/", "_") for p in d_vars}
    with pytest.raises(ValueError, match="computes its own loss"):
        model.compile(optimizer="adam", loss="binary_crossentropy")


def test_bad_knobs_raise_naming_the_value():
    with pytest.raises(ValueError, match="multiples of 4"):
        keras_zoo.create_model("dcgan", input_shape=(10, 10, 1))
    with pytest.raises(ValueError, match="dropout must be a float in .*got 1.0"):
        keras_zoo.create_model("dcgan", input_shape=SHAPE, dropout=1.0)
    with pytest.raises(ValueError, match="critic_steps must be an int >= 1, got 0"):
        keras_zoo.create_model("wgan_gp", input_shape=SHAPE, critic_steps=0)


def test_a_dcgan_step_updates_both_players_once():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("dcgan", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    g_before = [w.copy() for w in model.generator.get_weights()]
    d_before = [w.copy() for w in model.discriminator.get_weights()]
    logs = model.train_on_batch(_images(16), return_dict=True)
    assert set(logs) == {"loss", "g_loss", "d_real", "d_fake"}
    assert 0.0 < logs["d_real"] < 1.0 and 0.0 < logs["d_fake"] < 1.0
    assert int(model.optimizer.iterations.numpy()) == int(model.d_optimizer.iterations.numpy()) == 1
    assert any(not np.allclose(a, b) for a, b in zip(g_before, model.generator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(d_before, model.discriminator.get_weights()))


def test_wgan_gp_takes_critic_steps_per_generator_step():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("wgan_gp", critic_steps=3, **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    logs = model.train_on_batch(_images(16), return_dict=True)
    assert set(logs) == {"loss", "g_loss", "wasserstein", "gradient_penalty"}
    assert int(model.d_optimizer.iterations.numpy()) == 3
    assert int(model.optimizer.iterations.numpy()) == 1


def test_gradient_penalty_of_a_linear_critic_is_exact():
    """For D(x) = w . x the gradient is w everywhere, so the penalty is (||w|| - 1)^2."""
    critic = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)], name="critic")
    w = np.random.default_rng(0).normal(size=(64, 1)).astype("float32")
    critic.set_weights([w])
    generator = keras_zoo.create_model("wgan_gp", **SMALL).generator
    model = WGANGP(generator, critic, seed=0)
    penalty = float(model.gradient_penalty(_images(8), _images(8, seed=1)))
    assert penalty == pytest.approx((np.linalg.norm(w) - 1.0) ** 2, rel=1e-4)


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_keras_file_restores_both_optimizers_and_training_continues_identically(name, tmp_path):
    keras.utils.set_random_seed(0)
    # (dcgan without dropout: a Dropout layer's random state is not saved either)
    extra = {"critic_steps": 2} if name == "wgan_gp" else {"dropout": 0.0}
    model = keras_zoo.create_model(name, **extra, **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    x = _images(32)
    model.fit(x[:16] if name == "wgan_gp" else x, batch_size=16, epochs=2, verbose=0)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode
    assert type(reloaded) is type(model)
    if name == "wgan_gp":
        assert (reloaded.critic_steps, reloaded.gp_weight) == (2, 10.0)
    for mine, theirs in ((model.optimizer, reloaded.optimizer), (model.d_optimizer, reloaded.d_optimizer)):
        assert theirs.get_config() == mine.get_config()
        for a, b in zip(mine.variables, theirs.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    noise = np.random.default_rng(1).normal(size=(4, 8)).astype("float32")
    np.testing.assert_allclose(reloaded.generate(noise), model.generate(noise), atol=1e-6)
    if name == "wgan_gp":
        return  # its step (critic steps, nested gradient tapes) is slow to trace; dcgan covers the rest
    # Random-generator states are not saved by Keras: give both the same noise, then the next
    # step (both players, both optimizers) must be the same step.
    reloaded.seed_generator.state.assign(model.seed_generator.state)
    a = model.train_on_batch(x[:16], return_dict=True)
    b = reloaded.train_on_batch(x[:16], return_dict=True)
    assert b["g_loss"] == pytest.approx(a["g_loss"], rel=1e-4)
    for u, v in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def test_generate_signature_and_the_generator_alone(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("dcgan", **SMALL)
    noise = np.random.default_rng(2).normal(size=(5, 8)).astype("float32")
    expected = np.asarray(model.generate(noise))
    assert expected.shape == (5, *SHAPE) and expected.min() >= 0.0 and expected.max() <= 1.0

    loaded, metadata = keras_zoo.load_export(keras_zoo.export_model(model, str(tmp_path / "gan")))
    assert metadata["task"] == "generation"
    assert metadata["inputs"]["serving_default"][0]["shape"] == [None, 8]
    np.testing.assert_allclose(loaded.signatures["generate"](inputs=noise)["images"], expected, atol=1e-5)

    # The generator on its own: a plain Keras model (noise -> images) that saves and exports.
    alone = keras_zoo.export_model(model.generator, str(tmp_path / "gen"), name="dcgan_generator",
                                   task="generation")
    served, _ = keras_zoo.load_export(alone)
    np.testing.assert_allclose(served.signatures["serving_default"](inputs=noise)["images"], expected, atol=1e-5)
    model.generator.save(str(tmp_path / "generator.keras"))
    again = keras.saving.load_model(str(tmp_path / "generator.keras"))
    np.testing.assert_allclose(again(noise, training=False), expected, atol=1e-6)


@pytest.mark.slow
def test_nan_stops_the_run_with_a_message_and_keeps_the_last_finite_epoch(tmp_path):
    class PoisonGenerator(keras.callbacks.Callback):
        """Sets a generator weight to NaN once the first epoch (and its checkpoint) is done."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                w = self.model.generator.get_layer("images").kernel
                w.assign(np.full(w.shape, np.nan, dtype="float32"))

    run = tmp_path / "run"
    data = (_images(60),)
    with pytest.raises(FloatingPointError, match=r"'dcgan' stopped: the loss became nan at epoch 2"):
        keras_zoo.train("dcgan", data, epochs=4, batch_size=16, run_dir=str(run), verbose=0,
                        latent_dim=8, width=8, callbacks=[PoisonGenerator()])
    good = keras.saving.load_model(str(run / "best.keras"))  # the GAN recipe keeps the latest finite epoch
    assert all(np.all(np.isfinite(w)) for w in good.get_weights())
    steps = -(-keras_zoo.load_splits(data, targets="none").info.num_examples["train"] // 16)
    assert int(good.optimizer.iterations.numpy()) == steps  # saved after epoch 1, not after the NaN


# --------------------------------------------------------------------------- evaluation


def test_frechet_distance_matches_the_gaussian_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert evaluation.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5])
    assert evaluation.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # Isotropic scale s: trace term 3 * (1 - s)^2 (covariances I and s^2 I, up to sampling error).
    b = rng.normal(size=(4000, 3)) * 2.0
    assert evaluation.frechet_distance(a, b) == pytest.approx(3.0, rel=0.1)
    with pytest.raises(ValueError, match="same d"):
        evaluation.frechet_distance(a, a[:, :2])


def test_gan_report_and_sample_grid(tmp_path):
    keras.utils.set_random_seed(0)
    classifier = keras_zoo.create_model("cnn_small", input_shape=SHAPE, width=8, num_classes=3)
    gan = keras_zoo.create_model("dcgan", **SMALL)
    train, test = _images(80), _images(40, seed=5)
    report = evaluation.gan_report(gan, classifier, train, test, num_samples=50)
    assert set(report) == {"fd_generator", "fd_untrained", "fd_floor", "improvement", "num_samples"}
    assert report["num_samples"] == 50
    assert all(np.isfinite(v) and v >= -1e-6 for v in report.values())
    # Both sets are uniform noise: the real floor is far below the distance to any generator.
    assert report["fd_floor"] < report["fd_untrained"]

    path = str(tmp_path / "grid.png")
    evaluation.save_image_grid(evaluation.generate_images(gan, 10), path, columns=4, cell=16)
    from PIL import Image

    with Image.open(path) as image:
        assert image.size == (2 + 4 * (16 + 2), 2 + 3 * (16 + 2))  # 3 rows of 4, 2-pixel gutters
        assert image.mode == "L"
    assert os.listdir(tmp_path) == ["grid.png"]  # written beside and renamed: no leftovers
    with pytest.raises(ValueError, match=r"images must be \(n, h, w, 1 or 3\)"):
        evaluation.save_image_grid(np.zeros((2, 8, 8)), path)
