"""Bounded waits and reads: a missing multi-worker peer, downloads past their expected size, links
leaving a data folder, animated GIFs, and no traceback on stderr for handled errors."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def test_a_worker_that_never_comes_is_named_and_the_run_stops_within_the_limit(tmp_path):
    ports = _free_ports(2)
    config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": 0}}
    limit = 20
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "keras_zoo.cli", "train", "cnn_small", "--data", "digits", "--epochs", "1",
         "--out", str(tmp_path / "run"), "--distribute", "multi_worker", "--worker-timeout", str(limit)],
        env=_env(TF_CONFIG=json.dumps(config)), capture_output=True, text=True, timeout=limit + 120, cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert done.returncode == 1, done.stderr[-2000:]
    assert elapsed < limit + 60, elapsed
    lines = done.stderr.strip().splitlines()
    assert f"keras-zoo: waiting for worker 1 at 127.0.0.1:{ports[1]}" in done.stderr, done.stderr
    assert lines[-1] == (f"keras-zoo: worker 1 at 127.0.0.1:{ports[1]} did not start within {limit} s "
                         "(--worker-timeout); stopping"), lines
    assert "Traceback" not in done.stderr


def test_worker_timeout_is_checked():
    from keras_zoo import distribute

    with pytest.raises(ValueError, match=r"finite number of seconds > 0, got 'soon'"):
        distribute.set_worker_timeout("soon")
