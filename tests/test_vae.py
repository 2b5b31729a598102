"""VAE family: likelihood maths, training step, save/reload/resume, signatures, evaluation."""

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import evaluation
from keras_zoo.models import vae as vae_module

SHAPE = (8, 8, 1)


def _digits_like(n=32, seed=0):
    """Images whose values are k/16, like sklearn's digits."""
    return (np.random.default_rng(seed).integers(0, 17, size=(n, *SHAPE)) / 16).astype("float32")


def test_gaussian_kl_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected = 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(np.asarray(vae_module.gaussian_kl(mean, log_var)), expected, rtol=1e-5)
    assert np.allclose(np.asarray(vae_module.gaussian_kl(np.zeros((1, 4)), np.zeros((1, 4)))), 0.0)


@pytest.mark.parametrize("likelihood, channels", [("categorical", 17), ("logistic", 3 * 2)])
def test_discrete_likelihoods_are_normalised_and_their_mean_is_the_expectation(likelihood, channels):
    """Summing exp(-nll) over all 17 values of a one-pixel image gives 1, and `pixel_mean` is E[x]."""
    levels = 17
    rng = np.random.default_rng(1)
    params = rng.normal(scale=2.0, size=(1, 1, 1, 1, channels)).astype("float32")
    values = np.arange(levels, dtype="float32") / (levels - 1)
    probs = np.array([np.exp(-float(vae_module.pixel_nll(np.full((1, 1, 1, 1), v, "float32"), params,
                                                         likelihood, levels)[0])) for v in values])
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)
    mean = float(np.asarray(vae_module.pixel_mean(params, likelihood, levels)).ravel()[0])
    assert mean == pytest.approx(float(np.sum(probs * values)), abs=1e-4)


def test_bernoulli_nll_is_the_summed_cross_entropy():
    x = np.array([[[[0.0]], [[1.0]]]], "float32")  # (1, 2, 1, 1)
    logits = np.array([[[[0.0]], [[2.0]]]], "float32")
    expected = np.log(2.0) + np.log1p(np.exp(-2.0))
    assert float(vae_module.pixel_nll(x, logits, "bernoulli", 256)[0]) == pytest.approx(expected, rel=1e-5)


def test_bad_knobs_raise_naming_the_value():
    with pytest.raises(ValueError, match="likelihood must be one of .*got 'gaussian'"):
        keras_zoo.create_model("vae", input_shape=SHAPE, likelihood="gaussian")
    with pytest.raises(ValueError, match="multiples of 4"):
        keras_zoo.create_model("vae", input_shape=(10, 10, 1), depth=2)
    with pytest.raises(ValueError, match="levels must be an int >= 2, got 1"):
        keras_zoo.create_model("vae", input_shape=SHAPE, levels=1)
    model = keras_zoo.create_model("vae", input_shape=SHAPE)
    with pytest.raises(ValueError, match="computes its own loss"):
        model.compile(optimizer="adam", loss="mse")


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("vae", input_shape=SHAPE, likelihood="logistic", levels=17,
                                   latent_dim=4, width=8, dropout=0.0, seed=3)  # no dropout noise
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = _digits_like(64)
    history = model.fit(x, batch_size=32, epochs=6, verbose=0)
    return model, x, history.history


def test_training_lowers_the_negative_elbo_and_logs_its_terms(trained):
    _, _, history = trained
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert history["loss"][-1] < history["loss"][0]
    # loss = reconstruction + beta * KL with beta = 1 (per-batch means, averaged over the epoch)
    np.testing.assert_allclose(history["loss"], np.add(history["reconstruction_loss"], history["kl_loss"]),
                               rtol=1e-4)


def test_beta_weights_the_kl_term():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("vae", input_shape=SHAPE, beta=4.0, width=8, seed=0)
    model.compile(optimizer="adam")
    logs = model.test_on_batch(_digits_like(8), return_dict=True)
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + 4.0 * logs["kl_loss"], rel=1e-4)


def test_keras_file_reloads_in_safe_mode_and_training_continues_identically(trained, tmp_path):
    model, x, _ = trained
    path = str(tmp_path / "vae.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode
    assert type(reloaded) is type(model)
    assert (reloaded.likelihood, reloaded.levels, reloaded.latent_dim) == ("logistic", 17, 4)
    assert reloaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() > 0
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Keras does not save random-generator states (nor does it for Dropout); give both models the
    # same noise, and the same weights and optimizer moments must then make the same next step.
    reloaded.seed_generator.state.assign(model.seed_generator.state)
    after_original = model.train_on_batch(x[:16], return_dict=True)
    after_reloaded = reloaded.train_on_batch(x[:16], return_dict=True)
    assert after_reloaded["loss"] == pytest.approx(after_original["loss"], rel=1e-5)
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_inference_api_and_signatures_agree(trained, tmp_path):
    model, x, _ = trained
    path = keras_zoo.export_model(model, str(tmp_path))
    loaded, metadata = keras_zoo.load_export(path)
    assert set(metadata["signatures"]) == {"serving_default", "generate", "encode", "decode", "sample",
                                           "reconstruct"}
    encoded = loaded.signatures["encode"](inputs=x[:5])
    mean, log_var = model.encode(x[:5])
    np.testing.assert_allclose(encoded["mean"], mean, atol=1e-5)
    np.testing.assert_allclose(encoded["log_variance"], log_var, atol=1e-5)
    decoded = loaded.signatures["decode"](inputs=np.asarray(mean))["images"]
    np.testing.assert_allclose(decoded, loaded.signatures["reconstruct"](inputs=x[:5])["reconstruction"], atol=1e-5)
    np.testing.assert_allclose(decoded, model.reconstruct(x[:5]), atol=1e-5)
    assert decoded.shape == (5, *SHAPE) and 0.0 <= np.min(decoded) and np.max(decoded) <= 1.0
    one = loaded.signatures["sample"](inputs=np.int32(6), seed=np.int32(7))
    two = loaded.signatures["sample"](inputs=np.int32(6), seed=np.int32(7))
    other = loaded.signatures["sample"](inputs=np.int32(6), seed=np.int32(8))
    assert one["images"].shape == (6, *SHAPE) and one["latents"].shape == (6, 4)
    np.testing.assert_array_equal(one["images"], two["images"])  # same seed, same samples
    assert not np.allclose(one["images"], other["images"])
    np.testing.assert_allclose(loaded.signatures["generate"](inputs=one["latents"])["images"], one["images"], atol=1e-5)


def test_held_out_scores_and_the_pixel_baseline(trained):
    model, x, _ = trained
    held_out = _digits_like(40, seed=9)
    scores = evaluation.vae_scores(model, held_out, num_samples=4)
    assert scores["num_examples"] == 40
    assert scores["negative_elbo"] == pytest.approx(scores["reconstruction_nll"] + scores["kl"], rel=1e-6)
    assert scores["kl"] > 0 and 0 < scores["reconstruction_mse"] < 0.25
    # The uniform images carry 64 * ln(17) nats; per-pixel histograms of uniform data can do no better.
    baseline = evaluation.independent_pixel_nll(x, held_out, "categorical", 17)
    assert baseline["nll"] == pytest.approx(64 * np.log(17), rel=0.1)
    assert baseline["nll"] >= 64 * np.log(17) - 1e-6


def test_pixel_baseline_closed_form_on_a_constant_pixel():
    train = np.zeros((10, 1, 1, 1), "float32")  # always black
    test = np.array([[[[0.0]]], [[[1.0]]]], "float32")
    out = evaluation.independent_pixel_nll(train, test, "categorical", 2, smoothing=(1.0,))
    # Laplace smoothing: p(black) = 11/12, p(white) = 1/12
    assert out["nll"] == pytest.approx(-(np.log(11 / 12) + np.log(1 / 12)) / 2, rel=1e-9)
    bern = evaluation.independent_pixel_nll(train, test, "bernoulli", smoothing=(1.0,))
    assert bern["nll"] == pytest.approx(out["nll"], rel=1e-9)  # the same model for binary data


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_backup_with_the_optimizer_state(tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated kill after epoch 2")

    x = _digits_like(100)
    run = str(tmp_path / "run")
    args = dict(epochs=4, batch_size=16, run_dir=run, verbose=0, width=8, latent_dim=4)
    with pytest.raises(RuntimeError, match="simulated kill"):
        keras_zoo.train("vae", (x,), callbacks=[Crash()], **args)
    assert (tmp_path / "run" / "backup").is_dir()
    result = keras_zoo.train("vae", (x,), **args)  # the same call again
    assert len(result.history["loss"]) == 2  # epochs 3 and 4; 1 and 2 came from the backup
    steps = int(np.ceil(result.info.num_examples["train"] / 16))
    assert int(result.model.optimizer.iterations.numpy()) == 4 * steps  # restored, then 2 more epochs
    assert not (tmp_path / "run" / "backup").exists()
    assert np.isfinite(result.metrics["loss"])


def test_train_takes_the_pixel_levels_from_the_data(tmp_path):
    """digits hold 17 values (0..16), uint8 arrays 256: the discrete likelihood models those."""
    args = dict(epochs=1, verbose=0, width=8, latent_dim=4, resume=False)
    result = keras_zoo.train("vae", "digits", run_dir=str(tmp_path / "d"), **args)
    assert (result.model.likelihood, result.model.levels) == ("logistic", 17)
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    assert keras_zoo.train("vae", (images,), run_dir=str(tmp_path / "u"), **args).model.levels == 256
    result = keras_zoo.train("vae", (images,), run_dir=str(tmp_path / "o"), levels=64, **args)
    assert result.model.levels == 64  # an explicit override wins

