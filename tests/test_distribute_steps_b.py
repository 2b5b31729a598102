"""The other half of the models not in the "first" group (the "rest-b" group of
tests/distributed_step.py) take the same training step on 2 replicas as on 1 device."""

from __future__ import annotations

import pytest

from subprocesses import check_steps, two_replica_steps


@pytest.mark.slow
def test_these_models_take_the_same_step_on_two_replicas_as_on_one_device():
    check_steps(two_replica_steps("rest-b"), "rest-b")
