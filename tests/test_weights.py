"""The weight store: shipped checkpoints, integrity checks, the download cache and safe mode."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

import keras
import keras_zoo
from keras_zoo import pretrain, weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    """A tiny registry model saved as .keras, and a probe batch with its outputs."""
    keras.utils.set_random_seed(0)
    model = keras_zoo.create_model("mlp_lecture", input_shape=(4, 4, 1), num_classes=3, width=8)
    path = str(tmp_path_factory.mktemp("archive") / "mlp_lecture.keras")
    model.save(path)
    x = np.random.default_rng(0).uniform(size=(5, 4, 4, 1)).astype("float32")
    return path, x, np.asarray(model(x, training=False))


# --------------------------------------------------------------------------- shipped checkpoints


def test_manifest_entries_are_complete_and_their_files_verify():
    found = weights.entries()
    assert found, "saved_models/manifest.json lists no checkpoints"
    total = 0
    for e in found:
        for key in ("name", "tag", "file", "dataset", "metrics", "recipe", "overrides", "input_contract",
                    "size_bytes", "sha256", "keras_version", "tensorflow_version", "date", "command"):
            assert key in e, f"{e['name']}:{e['tag']} lacks {key!r}"
        contract = e["input_contract"]
        assert contract["dtype"] == "float32" and len(contract["value_range"]) == 2
        assert "normalization_inside_model" in contract
        assert e["command"].startswith("python -m keras_zoo.pretrain build ")
        assert e["metrics"]["split"] == "test" and len(e["metrics"]) > 1
        path = os.path.join(weights.store_dir(), e["file"])
        weights.verify(path, e["sha256"], e["size_bytes"])
        total += e["size_bytes"]
        assert e["name"] in keras_zoo.list_models(pretrained=True)
    assert total < 50 * 2**20
    assert set(keras_zoo.list_models(pretrained=False)).isdisjoint(keras_zoo.list_models(pretrained=True))


# Metrics of models whose evaluation samples (noise for a GAN, the posterior for a VAE, random views
# for SimCLR and IIC, random transforms for the rotation task) move with the random draws; the others are deterministic functions of the weights.
STOCHASTIC_TASKS = ("generation", "contrastive", "clustering", "pretext")


@pytest.mark.parametrize("entry", weights.entries(), ids=lambda e: f"{e['name']}:{e['tag']}")
def test_every_shipped_checkpoint_scores_its_manifest_metrics_on_its_held_out_split(entry):
    """Each checkpoint, on the held-out split its manifest names (same source, classes and seed),
    reproduces every metric the manifest records for it."""
    model = keras_zoo.create_model(entry["name"], pretrained=entry["tag"])
    shape = tuple(entry["input_contract"]["shape"])
    assert tuple(model.inputs[0].shape[1:]) == shape
    if entry["task"] == "classification":
        x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
        assert np.asarray(model(x, training=False)).shape == (2, entry["num_classes"]) == (
            2, len(entry["class_names"]))
    recipe = keras_zoo.Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry["recipe"].items()})
    split = entry["dataset"]["split"]
    try:
        source = pretrain.data_source(entry["dataset"]["source"])
    except FileNotFoundError as err:  # real data used to build checkpoints does not ship
        pytest.skip(f"the data {entry['name']}:{entry['tag']} was trained on is not here: {err}")
    keras.utils.set_random_seed(0)
    measured = keras_zoo.evaluate(model, source, recipe=recipe, seed=split["seed"],
                                  batch_size=recipe.batch_size,
                                  data_options={"classes": entry["dataset"]["classes"]})
    stochastic = entry["task"] in STOCHASTIC_TASKS
    for key, value in entry["metrics"].items():
        if key == "split":
            continue
        assert key in measured, f"{entry['name']}:{entry['tag']} no longer reports {key!r}"
        tolerance = 0.15 * abs(value) + 0.02 if stochastic else 2e-3 * abs(value) + 2e-4
        assert abs(measured[key] - value) <= tolerance, (key, measured[key], value)


def test_pretrained_cnn_classifies_its_held_out_digits():
    from keras_zoo.data import load_splits

    model = keras_zoo.create_model("cnn_small", pretrained="digits")
    entry = weights.get_entry("cnn_small", "digits")
    assert entry["dataset"]["split"]["seed"] == 0
    assert tuple(model.inputs[0].shape[1:]) == tuple(entry["input_contract"]["shape"])
    # The same seed gives the same split: these are the test images the manifest's metric is from.
    test = load_splits("digits", batch_size=512, seed=0).test
    x, y = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in test]))
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))
    assert accuracy > 0.95, accuracy
    assert abs(accuracy - entry["metrics"]["accuracy"]) < 1e-3


def test_evaluate_takes_a_shipped_checkpoints_name(capsys, tmp_path, monkeypatch):
    """`evaluate` and `keras-zoo evaluate` take ``NAME:TAG`` (``NAME``: the default checkpoint) as
    `predict` does, and score it as its manifest says; a path that is missing still says so."""
    from keras_zoo import cli

    entry = weights.get_entry("cnn_small", "digits")
    metrics = keras_zoo.evaluate("cnn_small:digits", "digits", seed=entry["dataset"]["split"]["seed"])
    assert metrics["accuracy"] == pytest.approx(entry["metrics"]["accuracy"], abs=1e-4)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate", "mlp_lecture:digits", "--data", "digits"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == pytest.approx(weights.get_entry("mlp_lecture", "digits")["metrics"]["accuracy"],
                                                abs=1e-4)
    assert cli.main(["evaluate", "cnn_small:no_such_tag", "--data", "digits"]) == 2
    assert "no_such_tag" in capsys.readouterr().err
    assert cli.main(["evaluate", "runs/missing", "--data", "digits"]) != 0
    assert "runs/missing" in capsys.readouterr().err


def test_default_tag_and_unknown_requests_name_what_exists():
    assert weights.get_entry("cnn_small")["tag"] == weights.tags("cnn_small")[0]
    assert weights.get_entry("cnn_small").get("default")
    with pytest.raises(KeyError, match=r"available tags for 'cnn_small': \[.*'digits-0to4'"):
        keras_zoo.create_model("cnn_small", pretrained="imagenet")
    without = keras_zoo.list_models(pretrained=False)
    assert "resnet18" in without
    with pytest.raises(KeyError, match="no pretrained weights for model .*models with weights: .*cnn_small"):
        keras_zoo.create_model(without[0], pretrained=True)
    with pytest.raises(ValueError, match=r"trained on inputs of shape \(28, 28, 1\).*finetune"):
        keras_zoo.create_model("cnn_small", input_shape=(8, 8, 1), pretrained=True)
    with pytest.raises(ValueError, match="pooling='avg' goes with include_top=False"):
        keras_zoo.create_model("cnn_small", pretrained="digits", pooling="avg")
    with pytest.raises(ValueError, match="predicts 3 classes, not 5; use keras_zoo.finetune"):
        keras_zoo.create_model("unet", pretrained=True, num_classes=5)
    with pytest.raises(ValueError, match="'conv_autoencoder' \\(reconstruction\\) does not take num_classes"):
        keras_zoo.create_model("conv_autoencoder", pretrained=True, num_classes=3)


def test_a_pretrained_classifier_gets_a_new_head_or_none_from_the_factory():
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    full = keras_zoo.create_model("cnn_small", pretrained="digits-0to4")
    assert full.pretrained_cfg["tag"] == "digits-0to4" and full.pretrained_cfg["num_classes"] == 5
    assert full.pretrained_cfg["input_contract"]["shape"] == [8, 8, 1]
    with pytest.raises(TypeError):
        full.pretrained_cfg["tag"] = "changed"  # read-only
    features = keras.Model(full.inputs, full.get_layer("pool").output)(x)

    seven = keras_zoo.create_model("cnn_small", pretrained="digits-0to4", num_classes=7)
    assert seven.output.shape[-1] == 7 and seven.name == "cnn_small"
    assert seven.pretrained_cfg["head"].startswith("reset: 7 classes")
    np.testing.assert_allclose(keras.Model(seven.inputs, seven.get_layer("pool").output)(x), features, atol=1e-6)
    probs = np.asarray(seven(x))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)

    pooled = keras_zoo.create_model("cnn_small", pretrained="digits-0to4", include_top=False, pooling="avg")
    np.testing.assert_allclose(pooled(x), features, atol=1e-6)
    maps = keras_zoo.create_model("cnn_small", pretrained="digits-0to4", include_top=False)
    assert len(maps.output.shape) == 4  # feature maps, as keras.applications' pooling=None
    np.testing.assert_allclose(np.asarray(maps(x)).mean(axis=(1, 2)), features, atol=1e-5)
    resnet = keras_zoo.create_model("resnet20", pretrained=True, include_top=False, pooling="avg")
    assert resnet.output.shape == (None, 64)


def test_closest_tag_picks_the_checkpoint_trained_nearest_the_datas_size():
    assert weights.closest_tag("cnn_small", (8, 8, 1)) == "digits"
    assert weights.closest_tag("cnn_small", (16, 16, 3)).startswith("shapes-")
    assert weights.closest_tag("cnn_small", (10, 10, 1)) == "digits"  # 8x8 over 16x16: less resizing
    assert weights.shrink_factor((8, 8, 1), (28, 28, 1)) == 3.5


def test_model_cards_come_from_the_manifest():
    for entry in weights.entries():
        card = weights.model_card(entry)
        assert card.startswith(f"# {entry['name']}:{entry['tag']}")
        for section in ("## Intended data", "## Input contract", "## Held-out metrics", "## Limitations",
                        "## Provenance"):
            assert section in card
        assert entry["sha256"] in card and entry["dataset"]["licence"] in card
        assert entry["dataset"]["licence"]
    with pytest.raises(ValueError, match="would change its architecture"):
        keras_zoo.create_model("cnn_small", pretrained=True, width=8)


def test_a_corrupted_shipped_file_is_reported_not_loaded(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    entry = weights.get_entry("cnn_small", "digits-0to4")
    data = open(os.path.join(weights.store_dir(), entry["file"]), "rb").read()
    (store / entry["file"]).write_bytes(data[:-100])  # truncated
    (store / weights.MANIFEST).write_text(json.dumps({"format": 1, "entries": [entry]}))
    with pytest.raises(weights.WeightIntegrityError, match="expected .*truncated"):
        weights.load_pretrained("cnn_small", "digits-0to4", store=str(store))
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF  # same length, one byte changed
    (store / entry["file"]).write_bytes(bytes(flipped))
    with pytest.raises(weights.WeightIntegrityError, match="sha256 .* expected .*tampered"):
        weights.load_pretrained("cnn_small", "digits-0to4", store=str(store))


# --------------------------------------------------------------------------- paths and URLs


def test_path_needs_the_right_sha256(small_archive):
    path, x, expected = small_archive
    model = keras_zoo.create_model("mlp_lecture", pretrained=path, sha256=_sha(path))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6)
    with pytest.raises(ValueError, match="need sha256="):
        keras_zoo.create_model("mlp_lecture", pretrained=path)
    with pytest.raises(weights.WeightIntegrityError, match="tampered"):
        keras_zoo.create_model("mlp_lecture", pretrained=path, sha256="0" * 64)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        keras_zoo.create_model("mlp_lecture", pretrained=path, sha256="abc")
    with pytest.raises(ValueError, match="holds a model named 'mlp_lecture', not 'mlp_wide'"):
        keras_zoo.create_model("mlp_wide", pretrained=path, sha256=_sha(path))


class _Server:
    """A static file server on 127.0.0.1 (free port) in a thread, counting GET requests."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_url_downloads_once_into_the_cache_and_heals_a_tampered_copy(small_archive, tmp_path, monkeypatch, caplog):
    path, x, expected = small_archive
    sha = _sha(path)
    served = tmp_path / "www"
    served.mkdir()
    (served / "mlp.keras").write_bytes(open(path, "rb").read())
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    cache = tmp_path / "home" / "weights"
    with _Server(served) as server:
        url = server.url("mlp.keras")
        model = keras_zoo.create_model("mlp_lecture", pretrained=url, sha256=sha)
        np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6)
        assert len(server.requests) == 1
        cached = [f for f in os.listdir(cache)]
        assert cached == [f"{sha[:16]}-mlp.keras"]  # no temporary files left behind

        keras_zoo.create_model("mlp_lecture", pretrained=url, sha256=sha)
        assert len(server.requests) == 1  # the verified cached copy is reused

        # A truncated cached copy is detected (hash re-checked on every load) and downloaded again.
        target = cache / cached[0]
        target.write_bytes(target.read_bytes()[:1000])
        with caplog.at_level(logging.WARNING, logger="keras_zoo"):
            model = keras_zoo.create_model("mlp_lecture", pretrained=url, sha256=sha)
        assert len(server.requests) == 2
        assert "failed their check" in caplog.text
        assert _sha(target) == sha
        np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6)

        # The server now hands out a tampered file: refused, and nothing lands in the cache.
        tampered = bytearray(open(path, "rb").read())
        tampered[-10] ^= 0xFF
        (served / "evil.keras").write_bytes(bytes(tampered))
        with pytest.raises(weights.WeightIntegrityError, match="nothing was kept"):
            keras_zoo.create_model("mlp_lecture", pretrained=server.url("evil.keras"), sha256=sha)
        assert sorted(os.listdir(cache)) == [cached[0]]
        with pytest.raises(OSError):
            weights.fetch(server.url("missing.keras"), sha)
        assert sorted(os.listdir(cache)) == [cached[0]]


# --------------------------------------------------------------------------- safe mode


def test_an_archive_needing_unsafe_deserialisation_is_refused(tmp_path):
    inputs = keras.Input((3,), name="inputs")
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs, name="mlp_lecture").save(path)
    with pytest.raises(weights.UnsafeArchiveError, match=r"'Lambda' \('double'\).*safe mode"):
        keras_zoo.create_model("mlp_lecture", pretrained=path, sha256=_sha(path))
    # Keras's own safe mode is the second line of defence, and stays on.
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(path)


# --------------------------------------------------------------------------- packaging


@pytest.mark.slow
def test_a_built_wheel_carries_the_store(tmp_path):
    """`pip install .` ships saved_models/ inside the package (checked on the wheel it builds)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), ROOT], check=True, cwd=str(tmp_path))
    (wheel,) = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    with zipfile.ZipFile(tmp_path / wheel) as archive:
        manifest = json.loads(archive.read("keras_zoo/saved_models/manifest.json"))
        assert manifest == weights.read_manifest()
        for e in manifest["entries"]:
            data = archive.read(f"keras_zoo/saved_models/{e['file']}")
            assert len(data) == e["size_bytes"] and hashlib.sha256(data).hexdigest() == e["sha256"]
