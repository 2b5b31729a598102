"""Presets: a saved configuration rebuilds with `create_model`, trains with its recipe knobs, and is
listed beside the built-in models (by the CLI too, without TensorFlow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import pytest

import keras_zoo
from keras_zoo import cli, factory
from keras_zoo import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _save(name="digits_mlp", **changes):
    fields = dict(base_model="mlp_lecture", model_overrides={"width": 48, "depth": 1, "dropout": 0.1},
                  recipe_changes={"learning_rate": 0.005, "batch_size": 32}, objective="val_accuracy",
                  direction="max", score=0.9, data="moons:count=200", family="mlp",
                  task="classification", input_shape=(2,), num_classes=2, parameters=242)
    fields.update(changes)
    return presets.write_preset(name, **fields)


def test_a_preset_is_a_small_readable_json_file_written_atomically(home):
    path = _save()
    assert path == str(home / "presets" / "digits_mlp.json")
    assert os.listdir(home / "presets") == ["digits_mlp.json"]  # no temporary file left behind
    record = json.loads(open(path, encoding="utf-8").read())
    for key in ("base_model", "model_overrides", "recipe", "score", "objective", "data", "date",
                "keras_zoo_version"):
        assert key in record
    assert record["keras_zoo_version"] == keras_zoo.__version__


def test_create_model_rebuilds_a_preset_with_its_overrides(home):
    _save()
    assert "digits_mlp" in keras_zoo.list_models()
    assert "digits_mlp" in keras_zoo.list_models("digits*", family="mlp", task="classification")
    assert "digits_mlp" not in keras_zoo.list_models(presets=False)
    spec = factory.get_spec("digits_mlp")
    assert spec.base == "mlp_lecture" and spec.recipe_name == "preset:digits_mlp"
    # The preset's spec carries its own recipe: the base recipe with the tuned changes.
    assert spec.recipe == keras_zoo.get_recipe("classifier").replace(
        name="preset:digits_mlp", description=spec.recipe.description, learning_rate=0.005, batch_size=32)
    assert "preset:digits_mlp" not in keras_zoo.list_recipes()  # nothing written into the recipe table
    assert spec.defaults["width"] == 48 and spec.input_shape == (2,) and spec.num_classes == 2

    keras.backend.clear_session()
    model = keras_zoo.create_model("digits_mlp")
    keras.backend.clear_session()
    expected = keras_zoo.create_model("mlp_lecture", input_shape=(2,), num_classes=2, width=48,
                                      depth=1, dropout=0.1)
    assert model.name == "digits_mlp"
    assert model.count_params() == expected.count_params() == 2 * 48 + 48 + 48 * 2 + 2
    assert [l.get_config() for l in model.layers][1:] == [l.get_config() for l in expected.layers][1:]
    # Overrides still apply on top of a preset.
    assert keras_zoo.create_model("digits_mlp", width=8).count_params() == 2 * 8 + 8 + 8 * 2 + 2
    info = keras_zoo.model_info("digits_mlp")
    assert info["base"] == "mlp_lecture" and info["defaults"]["width"] == 48


def test_train_and_cli_train_use_the_preset_recipe_knobs(home, tmp_path):
    _save()
    result = keras_zoo.train("digits_mlp", "moons:count=200", epochs=1, run_dir=str(tmp_path / "api"),
                             verbose=0)
    assert result.model.name == "digits_mlp"
    summary = json.loads((tmp_path / "api" / "metrics.json").read_text())
    assert summary["recipe"]["batch_size"] == 32 and summary["recipe"]["learning_rate"] == 0.005
    base = keras_zoo.get_recipe("classifier")
    assert summary["recipe"]["monitor"] == base.monitor  # the rest is the base recipe
    assert summary["recipe"]["epochs"] == 1 and summary["recipe"]["name"] == "preset:digits_mlp"

    assert cli.main(["train", "digits_mlp", "--data", "moons:count=200", "--epochs", "1",
                     "--out", str(tmp_path / "cli"), "--no-export"]) == 0
    summary = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert summary["model"] == "digits_mlp" and summary["recipe"]["batch_size"] == 32


def test_keras_zoo_list_shows_presets_without_importing_tensorflow(home):
    _save()
    code = ("import sys\nfrom keras_zoo import cli\ncli.main(['list'])\ncli.main(['info', 'digits_mlp'])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": ROOT, "KERAS_ZOO_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "cnn_small" in rows and "digits_mlp" in rows
    assert "preset:digits_mlp" in rows["digits_mlp"] and "mlp" in rows["digits_mlp"]
    assert '"base_model": "mlp_lecture"' in out.stdout


def test_names_that_clash_or_break_are_refused_or_skipped(home, caplog):
    with pytest.raises(ValueError, match="not valid"):
        _save(name="a/b")
    with pytest.raises(ValueError, match="cannot be stored"):
        _save(recipe_changes={"epochs": 3})
    # A file named like a built-in model never shadows it.
    _save(name="cnn_small")
    assert factory.get_spec("cnn_small").base is None
    assert keras_zoo.list_models().count("cnn_small") == 1
    # A broken file is skipped with a warning, not fatal.
    (home / "presets" / "broken.json").write_text("{not json")
    assert "broken" not in keras_zoo.list_models()
    _save(name="bad_base", base_model="no_such_model")
    assert "bad_base" not in keras_zoo.list_models()
    with pytest.raises(KeyError, match="no_such_model"):
        keras_zoo.create_model("bad_base")
    presets.delete_preset("bad_base")
    with pytest.raises(KeyError, match="unknown model 'bad_base'"):
        factory.get_spec("bad_base")
