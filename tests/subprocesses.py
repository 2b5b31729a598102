"""Helpers for the tests that run keras_zoo in child processes: two logical CPU devices
(tests/distributed_step.py) or a multi-worker cluster on 127.0.0.1 (tests/multi_worker_train.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def env(**extra):
    """The test's environment for a child: this checkout importable, TensorFlow quiet, no TF_CONFIG
    unless given."""
    child = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                 TF_CPP_MIN_LOG_LEVEL="2")
    child.pop("TF_CONFIG", None)
    child.update(extra)
    return child


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def two_replica_steps(which):
    """The JSON records `distributed_step.py WHICH` prints (one per model, and for a group that
    trains too, the `train` and `tune` records)."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_step.py"), which], env=env(),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json_lines(proc.stdout)


def check_steps(records, which):
    """Every model of group `which` took the same step on two replicas as on one device."""
    sys.path.insert(0, HERE)
    from distributed_step import group

    steps = {r["model"]: r for r in records if "model" in r}
    assert sorted(steps) == sorted(group(which)) and steps
    for name, r in steps.items():
        assert r["replicas"] == 2
        np.testing.assert_allclose(r["loss_two"], r["loss_one"], rtol=1e-4, atol=1e-5, err_msg=name)
        # The step moved the weights, and the two runs moved them alike: within 5% of the move
        # (the small models agree to float rounding; ResNet-50 at 32x32 normalises 1x1 feature maps
        # of 8 images, where the two ways of computing the batch variance differ by a few percent).
        # A missing loss scale is off by half the move, unsynchronised batch-norm or local
        # negatives by more.
        assert r["weights_moved"] > 0, name
        assert r["weights_apart"] <= 0.05 * r["weights_moved"], (name, r)
