"""Half of the models not in the "first" group (the "rest-a" group of tests/distributed_step.py)
take the same training step on 2 replicas as on 1 device; in the same child process, a short `train` and a
one-trial search under a 2-replica MirroredStrategy."""

from __future__ import annotations

import numpy as np
import pytest

from subprocesses import check_steps, two_replica_steps


@pytest.fixture(scope="module")
def records():
    """One subprocess: the step of each model of "rest-a" on 1 device and on 2 replicas, then a
    short `train` under MirroredStrategy with per-replica batches and linear LR scaling, then a
    one-trial search."""
    return two_replica_steps("rest-a")


@pytest.mark.slow
def test_these_models_take_the_same_step_on_two_replicas_as_on_one_device(records):
    check_steps(records, "rest-a")


@pytest.mark.slow
def test_train_under_mirrored_records_global_batch_and_scaled_learning_rate(records):
    (record,) = [r for r in records if "distribution" in r]
    assert record["distribution"] == {
        "strategy": "mirrored", "replicas": 2, "workers": 1, "batch_semantics": "per_replica",
        "global_batch_size": 64, "per_replica_batch_size": 32, "lr_scaling": "linear",
        "learning_rate": pytest.approx(2 * record["recipe_learning_rate"])}
    assert record["accuracy"] > 0.5
    # Saved as one device would save it: batch-norm layers not left synchronized.
    assert record["synchronized_left"] == 0


@pytest.mark.slow
def test_a_search_trains_its_trials_under_the_strategy(records):
    (record,) = [r for r in records if "trial" in r]
    assert record["replicas"] == 2
    assert np.isfinite(record["trial"]["score"]) and record["trial"]["accuracy"] > 0.3
