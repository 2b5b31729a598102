"""Tuning: search spaces of every model, `tune()` (defaults first, resume, failures), distributed mode."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import pytest

import keras_zoo
from keras_zoo import factory
from keras_zoo.recipes import get_recipe
from keras_zoo.registry import Choice, Float, Int
from keras_zoo.tuning import search_space
from keras_zoo.tuning.hypermodel import ZooHyperModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = keras_zoo.list_models()
MOONS = "moons:count=200"


# --------------------------------------------------------------------------- search spaces


@pytest.mark.parametrize("name", ALL)
def test_every_model_declares_a_search_space_with_registry_defaults(name):
    spec = factory.get_spec(name)
    assert spec.search_space, f"{name} declares no search_space (architecture knobs to tune)"
    params = search_space(name)
    recipe = get_recipe(spec.recipe)
    for key, param in params.items():
        expected = spec.defaults[key] if param.target == "model" else (
            1.0 if key == "augment_strength" else getattr(recipe, key))
        assert param.default == expected, key
    # Every knob is declared with an explicit default= equal to that value.
    hp = kt.HyperParameters()
    ZooHyperModel(name).declare_hyperparameters(hp)
    declared = {h.name: h.default for h in hp.space}
    assert set(declared) == set(params)
    for key, param in params.items():
        assert param.decode(declared[key]) == param.default, key


@pytest.mark.parametrize("name", ALL)
def test_the_trial_at_defaults_asks_for_the_builder_defaults_and_the_recipe(name):
    spec = factory.get_spec(name)
    hypermodel = ZooHyperModel(name)
    overrides, recipe = hypermodel.configuration(kt.HyperParameters())
    assert overrides == {k: spec.defaults[k] for k in overrides}
    assert recipe == get_recipe(spec.recipe)


# Building every model at its default size twice costs minutes (resnet50 at 224x224 ...); one model
# per family shows that the overrides above build exactly what create_model builds.
ONE_PER_FAMILY = sorted({factory.get_spec(n).family: n for n in reversed(ALL)}.values())


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_the_trial_at_defaults_is_create_model_and_the_recipe(name):
    keras.backend.clear_session()  # resets Keras's name counters, so both configs name layers alike
    expected = keras_zoo.create_model(name)
    keras.backend.clear_session()
    hypermodel = ZooHyperModel(name)
    hp = kt.HyperParameters()
    built = hypermodel.build(hp)
    assert built.get_config() == expected.get_config()
    assert built.count_params() == expected.count_params()
    _, recipe = hypermodel.configuration(hp)
    assert recipe == get_recipe(factory.get_spec(name).recipe)


def test_space_changes_replace_add_and_remove_knobs():
    params = search_space("cnn_small", space={"width": Choice((16, 32)), "dropout": None,
                                              "learning_rate": Float(1e-3, 1e-2, "log")})
    assert params["width"].domain == Choice((16, 32)) and params["width"].default == 32
    assert "dropout" not in params
    assert params["learning_rate"].default == get_recipe("classifier").learning_rate
    with pytest.raises(ValueError, match=r"'widht' is not a tunable knob.*width"):
        search_space("cnn_small", space={"widht": Int(8, 16)})
    with pytest.raises(ValueError, match=r"default 32 is outside"):
        search_space("cnn_small", space={"width": Int(8, 16)})
    with pytest.raises(ValueError, match=r"default 2 is not one of the choices"):
        search_space("cnn_small", space={"depth": Choice((1, 3))})
    with pytest.raises(ValueError, match="does not augment"):
        search_space("cnn_small", space={"augment_strength": Choice((0.0, 1.0))})


def test_tuple_and_mixed_choices_round_trip_through_keras_tuner():
    from keras_zoo.tuning.space import Param, scale_augment

    param = Param("stages", "model", Choice(((2, 2), (3, 4, 6))), (2, 2))
    hp = kt.HyperParameters()
    assert param.declare(hp) == (2, 2)
    hp.values["stages"] = hp.space[0].values[1]
    assert param.declare(hp) == (3, 4, 6)
    assert scale_augment(("flip", "rotate:0.2"), 0.5) == ("flip", "rotate:0.1")
    assert scale_augment(("flip", "rotate:0.2"), 0.0) == ()
    assert scale_augment(("flip", "rotate"), 1.0) == ("flip", "rotate")
    # A strength left to the augmentation's own default (rotate: 0.1 of a turn) is scaled too.
    assert scale_augment(("flip", "rotate"), 2.0) == ("flip", "rotate:0.2")


def test_a_recipe_that_augments_gets_an_augmentation_strength_knob():
    from keras_zoo.tuning.space import split_values, trial_recipe

    recipe = get_recipe("classifier").replace(augment=("flip", "rotate:0.2"))
    params = search_space("cnn_small", recipe=recipe)
    assert params["augment_strength"].default == 1.0
    overrides, changes = split_values(params, {"width": 16, "augment_strength": 0.5}, recipe)
    assert overrides == {"width": 16} and changes == {"augment": ("flip", "rotate:0.1")}
    assert trial_recipe(recipe, {"augment": recipe.augment}) is recipe
    assert trial_recipe(recipe, changes).augment == ("flip", "rotate:0.1")


# --------------------------------------------------------------------------- bad input, early


def test_bad_arguments_fail_before_any_training(tmp_path):
    with pytest.raises(ValueError, match=r"unknown tuner 'grid'.*random.*bayesian.*hyperband"):
        keras_zoo.tune("mlp_lecture", MOONS, tuner="grid", directory=str(tmp_path))
    with pytest.raises(ValueError, match="max_trials must be an int >= 1, got 0"):
        keras_zoo.tune("mlp_lecture", MOONS, max_trials=0, directory=str(tmp_path))
    with pytest.raises(ValueError, match=r"objective 'val_iou' is not reported.*'val_accuracy'"):
        keras_zoo.tune("mlp_lecture", MOONS, objective="val_iou", directory=str(tmp_path))
    with pytest.raises(ValueError, match="name of a built-in model"):
        keras_zoo.tune("mlp_lecture", MOONS, save_preset="cnn_small", directory=str(tmp_path))
    with pytest.raises(ValueError, match="preset name '../x' is not valid"):
        keras_zoo.tune("mlp_lecture", MOONS, save_preset="../x", directory=str(tmp_path))
    with pytest.raises(KeyError, match="cnn_smal"):
        keras_zoo.tune("cnn_smal", MOONS, directory=str(tmp_path))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1",
                           "KERASTUNER_TUNER_ID": "tuner0"}.items():
            mp.setenv(key, value)
        with pytest.raises(ValueError, match="overwrite=True is refused in distributed tuning"):
            keras_zoo.tune("mlp_lecture", MOONS, overwrite=True, directory=str(tmp_path))
    assert not os.listdir(tmp_path), "nothing may be written before the arguments are checked"


# --------------------------------------------------------------------------- searching


class _CountRuns(keras.callbacks.Callback):
    """Counts trainings in a module-level list (KerasTuner deep-copies callbacks per trial)."""

    runs: list = []

    def on_train_begin(self, logs=None):
        _CountRuns.runs.append(time.time())


class _InterruptSecondTraining(_CountRuns):
    def on_epoch_end(self, epoch, logs=None):
        if len(_CountRuns.runs) == 2:
            raise KeyboardInterrupt("simulated interruption")


def test_random_search_starts_at_defaults_is_resumable_and_saves_a_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    directory = str(tmp_path / "search")
    args = dict(max_trials=3, epochs=2, seed=0, directory=directory, verbose=0)
    _CountRuns.runs = []
    with pytest.raises(KeyboardInterrupt):
        keras_zoo.tune("mlp_lecture", MOONS, callbacks=[_InterruptSecondTraining()], **args)
    assert len(_CountRuns.runs) == 2
    # The same call resumes: trial 0 is kept, the interrupted trial runs again, then the last one.
    _CountRuns.runs = []
    result = keras_zoo.tune("mlp_lecture", MOONS, callbacks=[_CountRuns()], save_preset="moons_mlp",
                            **args)
    assert len(_CountRuns.runs) == 2
    assert [t["trial_id"] for t in result.trials] == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in result.trials)
    default = result.trials[0]
    assert default["default"] and default["values"] == {
        k: p.default for k, p in search_space("mlp_lecture").items()}
    assert result.default_trial_id == "0"
    recipe = get_recipe("classifier")
    assert (result.objective, result.direction) == (recipe.monitor, recipe.monitor_mode)
    best = max if result.direction == "max" else min
    assert result.best_score == best(t["score"] for t in result.trials)
    assert best(result.best_score, result.default_score) == result.best_score
    assert set(result.best_test) == {"loss", "accuracy"} and set(result.default_test) == {"loss", "accuracy"}
    assert result.held_out_metric == recipe.monitor.replace("val_", "")
    assert result.held_out == (result.best_test[result.held_out_metric],
                               result.default_test[result.held_out_metric])
    # Well above the two-class chance of 0.5 on the 40 held-out moons (the best of these three
    # 2-epoch trials scored 0.800, the default 0.675).
    assert result.best_test["accuracy"] > 0.7
    assert result.best_recipe_changes.keys() == {"learning_rate", "weight_decay", "batch_size"}
    table = result.table()
    assert "0 (default)" in table and result.objective in table and "learning_rate" in table
    with open(os.path.join(directory, "summary.json"), encoding="utf-8") as f:
        assert json.load(f)["best_trial_id"] == result.best_trial_id

    # A third call with the same budget runs nothing and reports the same search.
    _CountRuns.runs = []
    again = keras_zoo.tune("mlp_lecture", MOONS, callbacks=[_CountRuns()], **args)
    assert _CountRuns.runs == [] and again.best_score == result.best_score

    # The preset is the best trial.
    record = keras_zoo.tuning.read_preset("moons_mlp")
    assert record["base_model"] == "mlp_lecture"
    assert record["model_overrides"] == result.best_model_overrides
    assert record["recipe"] == result.best_recipe_changes
    assert record["score"] == result.best_score and record["objective"]["name"] == result.objective
    assert record["data"] == MOONS and record["input_shape"] == [2] and record["num_classes"] == 2
    assert "moons_mlp" in keras_zoo.list_models()


def test_a_trial_that_cannot_build_is_reported_and_the_search_goes_on(tmp_path, capsys):
    # Only two configurations exist: the default (width 64) and width 0, which the builder rejects.
    fixed = {k: None for k in search_space("mlp_lecture") if k != "width"}
    result = keras_zoo.tune("mlp_lecture", MOONS, max_trials=3, epochs=1, directory=str(tmp_path),
                            space={"width": Choice((0, 64)), **fixed}, verbose=0)
    statuses = {t["values"]["width"]: t for t in result.trials}
    assert statuses[64]["status"] == "COMPLETED" and statuses[64]["default"]
    assert statuses[0]["status"] == "FAILED"
    assert "width must be an int >= 1, got 0" in statuses[0]["message"]
    assert "width must be an int >= 1, got 0" in capsys.readouterr().err
    assert result.best_trial_id == statuses[64]["trial_id"]
    assert "failed: ValueError: width must be an int >= 1, got 0" in result.table()


@pytest.mark.parametrize("tuner,epochs", [("bayesian", 1), ("hyperband", 2)])
def test_bayesian_and_hyperband_searches_run_the_default_first(tuner, epochs, tmp_path):
    result = keras_zoo.tune("mlp_lecture", MOONS, tuner=tuner, max_trials=2, epochs=epochs,
                            directory=str(tmp_path), verbose=0, hyperband_factor=2)
    assert len(result.trials) == 2
    assert result.trials[0]["default"] and result.trials[0]["status"] == "COMPLETED"
    assert all(t["status"] == "COMPLETED" for t in result.trials)
    assert result.best_score == (max if result.direction == "max" else min)(
        result.best_score, result.default_score)


# --------------------------------------------------------------------------- distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_two_workers_share_the_trials(tmp_path):
    port, trials = _free_port(), 4
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    search = tmp_path / "search"
    procs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            log = open(tmp_path / f"{tuner_id}.log", "w")
            procs[tuner_id] = subprocess.Popen(
                [sys.executable, "-m", "keras_zoo.cli", "tune", "mlp_lecture", "--data", MOONS,
                 "--max-trials", str(trials), "--epochs", "1", "--out", str(search),
                 "--json", str(tmp_path / f"{tuner_id}.json")],
                env={**env, "KERASTUNER_TUNER_ID": tuner_id}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        for tuner_id, proc in procs.items():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = {t: (tmp_path / f"{t}.log").read_text()[-3000:] for t in procs}
    assert all(p.returncode == 0 for p in procs.values()), logs

    chief = json.loads((tmp_path / "chief.json").read_text())
    workers = [json.loads((tmp_path / f"{t}.json").read_text()) for t in ("tuner0", "tuner1")]
    assert chief["role"] == "chief" and {w["role"] for w in workers} == {"worker"}
    # The chief's oracle holds every result.
    assert len(chief["trials"]) == trials
    assert all(t["status"] == "COMPLETED" and t["score"] is not None for t in chief["trials"])
    assert chief["trials"][0]["default"] and chief["best_trial_id"] is not None
    # Every trial ran exactly once, on one of the workers.
    ran = [t["trial_id"] for w in workers for t in w["trials"]]
    assert sorted(ran) == sorted(t["trial_id"] for t in chief["trials"])
    oracle = json.loads((search / "oracle.json").read_text())
    assert sorted(oracle["run_times"].values()) == [1] * trials
