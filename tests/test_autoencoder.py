"""The autoencoder family: encoder/decoder structure, corruptions, reconstruction metrics, signatures
and the denoising/masked training paths through `keras_zoo.train`."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras
import keras_zoo
from keras_zoo.data import load_splits
from keras_zoo.data.corruptions import make_corruption, parse_corruption
from keras_zoo.recipes import Recipe, get_recipe
from keras_zoo.recipes.objectives import PSNR, SSIM

SEED = tf.constant([3, 4], tf.int64)


def images(n=4, size=8, channels=1, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, channels)).astype("float32")


# === Model ===


def test_autoencoder_is_decoder_of_encoder_with_a_latent_bottleneck():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("conv_autoencoder", input_shape=(8, 8, 1), latent_dim=5, filters=8)
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    assert encoder.output.shape == (None, 5) and decoder.output.shape == (None, 8, 8, 1)
    x = images()
    out = np.asarray(model(x, training=False))
    np.testing.assert_allclose(out, np.asarray(decoder(encoder(x, training=False), training=False)), atol=1e-6)
    assert 0.0 <= out.min() and out.max() <= 1.0
    # The encoder comes out whole as a feature extractor, and keeps its trained weights when reloaded.
    features = np.asarray(encoder(x, training=False))
    assert features.shape == (4, 5)


def test_encoder_survives_a_keras_round_trip(tmp_path):
    model = keras_zoo.create_model("masked_autoencoder", input_shape=(8, 8, 1), filters=8)
    path = str(tmp_path / "ae.keras")
    model.save(path)
    encoder = keras.saving.load_model(path).get_layer("encoder")
    x = images()
    np.testing.assert_allclose(np.asarray(encoder(x)), np.asarray(model.get_layer("encoder")(x)), atol=1e-6)


def test_bad_autoencoder_arguments_fail_at_build_time():
    with pytest.raises(ValueError, match="multiples of 2\\*\\*depth = 4"):
        keras_zoo.create_model("conv_autoencoder", input_shape=(10, 10, 1))
    with pytest.raises(ValueError, match="latent_dim"):
        keras_zoo.create_model("conv_autoencoder", latent_dim=0)
    with pytest.raises(ValueError, match="too small"):
        keras_zoo.create_model("conv_autoencoder", input_shape=(4, 4, 1), depth=3)


def test_export_has_reconstruct_encode_and_decode(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("conv_autoencoder", input_shape=(8, 8, 1), latent_dim=6, filters=8)
    loaded, metadata = keras_zoo.load_export(keras_zoo.export_model(model, str(tmp_path)))
    assert {"serving_default", "reconstruct", "encode", "decode"} <= set(metadata["signatures"])
    x = images(3)
    latent = loaded.signatures["encode"](inputs=x)["latent"]
    assert latent.shape == (3, 6)
    decoded = loaded.signatures["decode"](latent=latent)["reconstruction"]
    reconstructed = loaded.signatures["reconstruct"](inputs=x)["reconstruction"]
    np.testing.assert_allclose(np.asarray(decoded), np.asarray(reconstructed), atol=1e-5)
    np.testing.assert_allclose(np.asarray(reconstructed), np.asarray(model(x, training=False)), atol=1e-5)


# === Metrics ===


def test_psnr_and_ssim_metrics():
    clean = np.zeros((2, 8, 8, 1), "float32")
    psnr = PSNR()
    psnr.update_state(clean, clean + 0.1)  # MSE 0.01 -> 20 dB
    assert float(psnr.result()) == pytest.approx(20.0, abs=1e-3)
    exact = PSNR()
    exact.update_state(clean, clean)  # infinite PSNR counts as the cap, not inf
    assert float(exact.result()) == pytest.approx(100.0)
    x = images(2)
    ssim = SSIM()
    ssim.update_state(x, x)  # a window of 8 on 8x8 images (tf.image.ssim needs it to fit)
    assert float(ssim.result()) == pytest.approx(1.0, abs=1e-5)
    noisy = SSIM()
    noisy.update_state(x, np.clip(x + images(2, seed=1) * 0.5, 0, 1))
    assert 0.0 < float(noisy.result()) < 0.9
    restored = keras.metrics.deserialize(keras.metrics.serialize(PSNR(cap=50.0)))
    assert isinstance(restored, PSNR) and restored.cap == 50.0


# === Corruptions ===


def test_corruption_specs_are_validated_with_clear_errors():
    assert [c.kind for c in parse_corruption("gaussian:0.2+salt_pepper:0.05")] == ["gaussian", "salt_pepper"]
    for bad, match in [("gauss:0.1", "unknown corruption 'gauss'"), ("gaussian", "needs an amount"),
                       ("salt_pepper:1.5", "rate must be in"), ("mask_patches:0.5,sz=2", "unknown option 'sz=2'"),
                       ("mask_patches:0.5,loss=some", "'all' or 'masked'"), ("", "non-empty")]:
        with pytest.raises(ValueError, match=match):
            parse_corruption(bad)
    with pytest.raises(ValueError, match="gauss"):
        Recipe(targets="image", loss="mse", metrics=("mse",), corruption="gauss:0.1")
    with pytest.raises(ValueError, match="targets='image'"):
        Recipe(corruption="gaussian:0.1")
    assert get_recipe("denoising_autoencoder").corruption.startswith("gaussian:")
    assert get_recipe("masked_autoencoder").corruption.startswith("mask_patches:")


def test_gaussian_and_salt_pepper_noise():
    x = np.full((64, 16, 16, 3), 0.5, "float32")
    noisy, clean = make_corruption("gaussian:0.1")(x, SEED)
    np.testing.assert_array_equal(clean, x)
    assert float(tf.math.reduce_std(noisy - x)) == pytest.approx(0.1, rel=0.05)
    assert abs(float(tf.reduce_mean(noisy - x))) < 0.005
    again, _ = make_corruption("gaussian:0.1")(x, SEED)
    np.testing.assert_array_equal(noisy, again)  # same seed, same noise
    other, _ = make_corruption("gaussian:0.1")(x, SEED + 1)
    assert not np.array_equal(noisy, other)

    sp, _ = make_corruption("salt_pepper:0.2")(x, SEED)
    sp = np.asarray(sp)
    hit = sp[..., 0] != 0.5
    assert hit.mean() == pytest.approx(0.2, abs=0.01)
    assert set(np.unique(sp[hit])) == {0.0, 1.0}
    assert (sp[..., 0] == sp[..., 1]).all()  # a pixel's channels are hit together


def test_patch_masking_hides_an_exact_share_and_can_weight_the_loss():
    x = np.full((5, 8, 8, 1), 0.5, "float32")
    masked, clean = make_corruption("mask_patches:0.25,size=2,fill=1.0")(x, SEED)
    hidden = np.asarray(masked)[..., 0] == 1.0
    assert (hidden.reshape(5, -1).sum(axis=1) == 16).all()  # 4 of the 16 patches, 2x2 each
    blocks = hidden.reshape(5, 4, 2, 4, 2)
    assert (blocks.all(axis=(2, 4)) == blocks.any(axis=(2, 4))).all()  # whole patches only
    one = make_corruption("mask_patches:0.25,size=2,fill=1.0")(x[0], SEED)[0]  # one example works too
    assert one.shape == (8, 8, 1)
    inputs, target, weight = make_corruption("mask_patches:0.5,size=4,loss=masked")(x, SEED)
    np.testing.assert_array_equal(np.asarray(weight) == 1.0, np.asarray(inputs) == 0.0)
    np.testing.assert_array_equal(target, x)


# === Training paths ===


@pytest.mark.slow
def test_denoising_autoencoder_trains_to_beat_its_noisy_inputs(tmp_path):
    result = keras_zoo.train("denoising_autoencoder", "digits", epochs=4, run_dir=str(tmp_path), verbose=0)
    assert set(result.metrics) >= {"loss", "mse", "psnr", "ssim"}
    assert result.info.input_shape == (8, 8, 1)
    corruption = make_corruption(get_recipe("denoising_autoencoder").corruption)
    test = load_splits("digits", targets="image", corruption=corruption, batch_size=256).test
    noisy_psnr = np.concatenate([tf.image.psnr(x, y, 1.0).numpy() for x, y in test]).mean()
    assert result.metrics["psnr"] > noisy_psnr + 1.0, (result.metrics, noisy_psnr)


@pytest.mark.slow
def test_masked_loss_counts_only_the_hidden_pixels(tmp_path):
    spec = "mask_patches:0.5,size=2,loss=masked"
    result = keras_zoo.train("masked_autoencoder", "digits", epochs=1, run_dir=str(tmp_path), verbose=0,
                             data_options={"corruption": spec}, filters=8)
    assert result.metrics["loss"] > 0
    splits = load_splits("digits", targets="image", corruption=make_corruption(spec), batch_size=64)
    x, y, w = next(iter(splits.test))
    assert w.shape == (64, 8, 8, 1) and float(tf.reduce_mean(w)) == pytest.approx(0.5)
    pred = result.model.predict(x, verbose=0)
    err = (pred - np.asarray(y)) ** 2
    w = np.asarray(w)
    metrics = result.model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    # The loss sums squared errors over hidden pixels only (per pixel of the batch); mse is the
    # mean over hidden pixels; PSNR stays a whole-image figure.
    assert metrics["loss"] == pytest.approx(float(np.sum(w * err) / err.size), rel=1e-4)
    assert metrics["mse"] == pytest.approx(float(np.sum(w * err) / np.sum(w)), rel=1e-4)
    whole = float(np.mean(10 * np.log10(1.0 / err.mean(axis=(1, 2, 3)))))
    assert metrics["psnr"] == pytest.approx(whole, rel=1e-3)
