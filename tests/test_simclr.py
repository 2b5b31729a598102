"""SimCLR family: NT-Xent, augmented views, registry encoders, save/reload, embed, probes, geometry."""

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import evaluation
from keras_zoo.models import simclr as simclr_module

SHAPE = (8, 8, 1)
SMALL = dict(input_shape=SHAPE, encoder_options={"width": 8}, projection_width=16, projection_dim=8)


def _nt_xent_accuracy_reference(a, b):
    """Fraction of the 2N anchors whose most similar other view is their own positive."""
    z = np.concatenate([a, b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    return float(np.mean(sim.argmax(axis=1) == (np.arange(2 * n) + n) % (2 * n)))


def _nt_xent_reference(a, b, tau):
    """Direct transcription of the SimCLR paper's loss: mean over the 2N anchors."""
    z = np.concatenate([a, b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    sim = z @ z.T / tau
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        losses.append(-sim[i, positive] + np.log(np.sum(np.exp(sim[i, others]))))
    return float(np.mean(losses))


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_papers_definition(tau):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    loss, accuracy = simclr_module.nt_xent(a.astype("float32"), b.astype("float32"), tau)
    assert float(loss) == pytest.approx(_nt_xent_reference(a, b, tau), rel=1e-4)
    assert float(accuracy) == pytest.approx(_nt_xent_accuracy_reference(a, b), abs=1e-6)


def test_nt_xent_is_low_when_views_agree_and_the_batch_is_spread():
    eye = np.eye(8, dtype="float32")
    loss, accuracy = simclr_module.nt_xent(eye, eye, 0.1)
    assert float(accuracy) == 1.0
    assert float(loss) < 0.01  # positives at similarity 1, negatives at 0, tau = 0.1
    shuffled, _ = simclr_module.nt_xent(eye, eye[::-1], 0.1)
    assert float(shuffled) > 5.0


def test_views_are_random_in_range_and_seeded():
    x = np.random.default_rng(0).uniform(size=(6, 16, 16, 3)).astype("float32")
    augment = simclr_module.augmenter((16, 16, 3), flip=True, seed=4)
    names = [layer.name for layer in augment.layers]
    assert names == ["crop_zoom", "crop_shift", "flip", "colour_jitter", "grayscale", "blur"]
    a, b = augment(x, training=True), augment(x, training=True)
    assert a.shape == x.shape and float(np.min(a)) >= 0.0 and float(np.max(a)) <= 1.0
    assert not np.allclose(a, b) and not np.allclose(a, x)
    again = simclr_module.augmenter((16, 16, 3), flip=True, seed=4)(x, training=True)
    np.testing.assert_allclose(again, a, atol=1e-6)  # the same seed draws the same first views
    # One channel: brightness/contrast instead of colour jitter and grayscale; no flip by default.
    gray = [layer.name for layer in simclr_module.augmenter(SHAPE).layers]
    assert gray == ["crop_zoom", "crop_shift", "brightness", "contrast", "blur"]
    with pytest.raises(ValueError, match="crop must be a float in"):
        simclr_module.augmenter(SHAPE, crop=1.5)


def test_encoder_is_any_registered_classifier_with_a_pool_layer():
    lecture = keras_zoo.create_model("simclr", input_shape=SHAPE, encoder="cnn_lecture",
                                     encoder_options={"filters": 12})
    assert lecture.encoder.outputs[0].shape[-1] == 12
    small = keras_zoo.create_model("simclr", **SMALL)
    assert small.encoder.outputs[0].shape[-1] == 16  # width 8, depth 2: 8 then 16 channels pooled
    with pytest.raises(ValueError, match="encoder 'mlp_lecture' has no layer named 'pool'"):
        keras_zoo.create_model("simclr", input_shape=SHAPE, encoder="mlp_lecture")
    with pytest.raises(ValueError, match="encoder 'vae' is a generation model"):
        keras_zoo.create_model("simclr", input_shape=SHAPE, encoder="vae")
    with pytest.raises(KeyError, match="unknown model 'cnn_smal'"):
        keras_zoo.create_model("simclr", input_shape=SHAPE, encoder="cnn_smal")
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['widht'\]"):
        keras_zoo.create_model("simclr", input_shape=SHAPE, encoder_options={"widht": 3})


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("simclr", seed=1, **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    rng = np.random.default_rng(0)
    x = np.repeat(np.repeat(rng.uniform(size=(64, 2, 2, 1)), 4, axis=1), 4, axis=2).astype("float32")
    history = model.fit(x, batch_size=32, epochs=8, verbose=0)
    return model, x, history.history


def test_training_lowers_the_contrastive_loss(trained):
    _, _, history = trained
    assert set(history) == {"loss", "contrastive_accuracy"}
    assert np.mean(history["loss"][-2:]) < np.mean(history["loss"][:2])
    assert np.mean(history["contrastive_accuracy"][-2:]) > np.mean(history["contrastive_accuracy"][:2])


def test_keras_file_reloads_and_fit_continues_with_the_optimizer_state(trained, tmp_path):
    model, x, _ = trained
    path = str(tmp_path / "simclr.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode
    assert reloaded.temperature == model.temperature
    assert [layer.name for layer in reloaded.augmenter.layers] == [layer.name for layer in model.augmenter.layers]
    np.testing.assert_allclose(reloaded(x[:4]), model(x[:4]), atol=1e-6)
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    before = int(reloaded.optimizer.iterations.numpy())
    history = reloaded.fit(x, batch_size=32, epochs=1, verbose=0).history
    assert int(reloaded.optimizer.iterations.numpy()) == before + 2
    assert np.isfinite(history["loss"][0])


def test_embed_signature_is_unit_norm_and_matches_the_model(trained, tmp_path):
    model, x, _ = trained
    loaded, metadata = keras_zoo.load_export(keras_zoo.export_model(model, str(tmp_path)))
    assert metadata["task"] == "contrastive"
    served = np.asarray(loaded.signatures["embed"](inputs=x[:5])["embedding"])  # the float signature
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(served, model.embed(x[:5]), atol=1e-5)
    features = np.asarray(model(x[:5]))
    np.testing.assert_allclose(served, features / np.linalg.norm(features, axis=1, keepdims=True), atol=1e-5)


def test_the_encoder_seeds_a_classifier(trained):
    model, x, _ = trained
    classifier = model.classifier(3, freeze_encoder=True)
    assert classifier.get_layer("encoder") is model.encoder
    keras_zoo.get_recipe("classifier").compile(classifier)
    y = np.arange(len(x)) % 3
    frozen = [w.copy() for w in model.encoder.get_weights()]
    classifier.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(frozen, model.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)  # a probe: the encoder stayed as pre-trained
    assert classifier.predict(x[:4], verbose=0).shape == (4, 3)
    model.encoder.trainable = True


def test_probe_report_and_geometry(trained):
    model, x, _ = trained
    y = (x.reshape(len(x), -1).mean(axis=1) > np.median(x.mean(axis=(1, 2, 3)))).astype("int32")
    report = evaluation.simclr_report(model, (x[:48], y[:48]), (x[48:], y[48:]),
                                      labels_per_class=(5, None), repeats=2)
    assert set(report["probe"]) == {"5_per_class", "all"}
    for budget in report["probe"].values():
        assert set(budget) == {"simclr", "random_init", "pixels"}
        # Brightness is one linear direction of the pixels: even 5 labels per class find it better
        # than chance (0.5) on the 16 held-out images.
        assert budget["pixels"]["accuracy"] > 0.5, budget
    # Brightness is a linear function of the pixels: the pixel probe with all labels is near perfect.
    assert report["probe"]["all"]["pixels"]["accuracy"] >= 0.85
    for geometry in report["geometry"].values():
        # Views of one image are not identical features (alignment > 0) and the features are not
        # collapsed onto one point (uniformity < 0, which it equals only when every feature coincides).
        assert geometry["alignment"] > 0.0 and geometry["uniformity"] < 0.0


def test_alignment_uniformity_and_linear_probe_on_known_inputs():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(200, 3))
    same = evaluation.alignment_uniformity(e, e)
    assert same["alignment"] == pytest.approx(0.0, abs=1e-12)
    collapsed = evaluation.alignment_uniformity(np.ones((50, 3)), np.ones((50, 3)))
    assert collapsed["uniformity"] == pytest.approx(0.0, abs=1e-12)  # all at one point: log(1)
    assert same["uniformity"] < -1.0  # spread over the sphere
    opposite = evaluation.alignment_uniformity(e, -e)
    assert opposite["alignment"] == pytest.approx(4.0)  # ||u - (-u)||^2 = 4 on the unit sphere

    labels = np.repeat([0, 1, 2], 30)
    features = np.eye(3)[labels] + 0.01 * rng.normal(size=(90, 3))
    probe = evaluation.linear_probe(features, labels, features, labels, labels_per_class=2, repeats=3)
    assert probe["accuracy"] == 1.0 and probe["repeats"] == 3
    with pytest.raises(ValueError, match="labels_per_class=31 exceeds the smallest class"):
        evaluation.linear_probe(features, labels, features, labels, labels_per_class=31)
