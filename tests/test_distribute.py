"""Training under `tf.distribute`: strategy names, batch semantics, and one model of each recipe
taking the same step on 2 replicas as on 1 device. The other models' steps are checked by
tests/test_distribute_steps_a.py and _b.py, the multi-worker cluster by tests/test_distribute_cluster.py
(separate files: pytest-xdist gives each file to one worker, so their minutes run side by side).

Two logical CPU devices must be configured before TensorFlow starts, so everything that needs them
runs in a subprocess (tests/distributed_step.py, tests/multi_worker_train.py); this process keeps
its one device and the rest of the suite is unaffected.
"""

from __future__ import annotations

import json

import pytest

from keras_zoo import distribute
from keras_zoo.recipes import get_recipe
from subprocesses import check_steps, two_replica_steps


# === Names and batch semantics (no devices needed) ===

def test_a_bad_strategy_name_is_refused_naming_it_and_the_accepted_ones():
    with pytest.raises(ValueError) as raised:
        distribute.check_strategy("mirorred")
    assert all(word in str(raised.value) for word in ("'mirorred'", "'mirrored'", "'multi_worker'"))
    with pytest.raises(ValueError, match="tf.distribute.Strategy"):
        distribute.check_strategy(3)


def test_multi_worker_without_a_cluster_says_what_tf_config_must_hold(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.check_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]},
                                                "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ValueError, match="TF_CONFIG must name"):
        distribute.check_strategy("multi_worker")


def test_train_refuses_a_bad_strategy_before_reading_data(tmp_path):
    import keras_zoo

    with pytest.raises(ValueError, match="'gpu'"):
        keras_zoo.train("cnn_small", str(tmp_path / "no-such-folder"), strategy="gpu")


def test_cli_distribute_takes_only_the_named_strategies(capsys):
    from keras_zoo import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "cnn_small", "--data", "digits", "--distribute", "tpu"])
    err = capsys.readouterr().err
    assert "'tpu'" in err and "mirrored" in err and "multi_worker" in err


def test_batch_is_global_unless_the_recipe_says_per_replica_and_lr_scales_only_when_asked():
    recipe = get_recipe("classifier")
    assert (recipe.batch_per_replica, recipe.lr_scaling) == (False, "none")
    one = distribute.distribution(None, 64, 1e-3)
    assert (one.replicas, one.global_batch_size, one.per_replica_batch_size, one.learning_rate) == (1, 64, 64, 1e-3)
    with pytest.raises(ValueError, match="lr_scaling"):
        recipe.replace(lr_scaling="sqrt")
    with pytest.raises(ValueError, match="batch_per_replica"):
        recipe.replace(batch_per_replica="yes")


# === Two replicas in one process ===

def test_the_step_groups_cover_every_model_once_but_those_left_to_another():
    import keras_zoo
    from distributed_step import GROUPS, group
    from generic import DEEPER_TWINS, traced_once

    groups = [group(which) for which in GROUPS]
    named = [name for names in groups for name in names]
    assert len(named) == len(set(named)), "a model is in two groups"
    left = traced_once() | set(DEEPER_TWINS)
    assert set(named) | left == set(keras_zoo.list_models()) and not set(named) & left
    assert set(DEEPER_TWINS.values()) <= set(named)
    assert "mobilenet_v3_small" in named and "dann" in named


def test_one_model_of_each_recipe_takes_the_same_step_on_two_replicas_as_on_one_device():
    check_steps(two_replica_steps("first"), "first")
