"""A two-process multi-worker cluster on 127.0.0.1 (tests/multi_worker_train.py): the two workers
train as one process would, only the chief writes, and a killed worker restarted with the same
command rejoins."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from keras_zoo import distribute
from subprocesses import HERE, env, free_ports, json_lines


def _workers(run_dir, ports, epochs, kill_after=None, only=None):
    script = os.path.join(HERE, "multi_worker_train.py")
    extra = [str(kill_after)] if kill_after else []
    procs = [subprocess.Popen([sys.executable, script, str(run_dir), str(i), ",".join(map(str, ports)),
                               str(epochs), *extra], env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i in (only if only is not None else range(len(ports)))]
    return procs


def _finish(procs, timeout=600):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


@pytest.mark.slow
def test_two_workers_train_as_one_process_and_only_the_chief_writes(tmp_path):
    epochs = 4
    single = subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_train.py"),
                               str(tmp_path / "single"), "single", "0", str(epochs)], env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ((code, stdout, stderr),) = _finish([single])
    assert code == 0, stderr[-3000:]
    (alone,) = json_lines(stdout)

    run_dir = tmp_path / "cluster"
    results = _finish(_workers(run_dir, free_ports(2), epochs))
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    chief, worker = (json_lines(stdout)[0] for _, stdout, _ in results)
    assert chief["distribution"]["workers"] == 2 and chief["distribution"]["replicas"] == 2
    assert chief["distribution"]["global_batch_size"] == alone["distribution"]["global_batch_size"]
    assert abs(chief["metrics"]["accuracy"] - alone["metrics"]["accuracy"]) <= 0.01, (chief, alone)
    assert chief["metrics"] == worker["metrics"]
    written = sorted(os.listdir(run_dir))
    assert {"model.keras", "metrics.json", "curves.png", "log.csv", "best.keras"} <= set(written)
    assert "backup" not in written  # removed once the run finished
    # Nothing but the chief's run directory (and the single run's) under tmp_path, and no
    # worker directory left in the temporary folder.
    assert sorted(os.listdir(tmp_path)) == ["cluster", "single"]
    assert not os.path.exists(distribute.work_dir(str(run_dir), _Worker1()))


class _Worker1:
    """Stands for worker 1's strategy in `distribute.work_dir` (which reads its cluster resolver)."""

    class cluster_resolver:  # noqa: N801
        task_type, task_id = "worker", 1

        @staticmethod
        def cluster_spec():
            class Spec:
                @staticmethod
                def as_dict():
                    return {"worker": ["a", "b"]}

            return Spec()


@pytest.mark.slow
def test_a_killed_worker_restarted_with_the_same_command_rejoins_and_every_epoch_is_logged_once(tmp_path):
    epochs, run_dir, ports = 3, tmp_path / "cluster", free_ports(2)

    def start(index):  # the same command every time; worker 1 kills itself after epoch 2, once
        return _workers(run_dir, ports, epochs, kill_after=2 if index == 1 else None, only=[index])[0]

    chief, worker = start(0), start(1)
    worker.wait(timeout=600)
    assert worker.returncode == -signal.SIGKILL, worker.stderr.read()[-3000:]
    # The chief's next collective step finds its peer gone: it stops, saying what to do.
    _, stderr = chief.communicate(timeout=600)
    assert chief.returncode != 0 and "start the same command again on every machine" in stderr, stderr[-3000:]
    with open(run_dir / "log.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    # Both started again with the same commands: they resume from epoch 3 and finish.
    results = _finish([start(0), start(1)])
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    with open(run_dir / "log.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(epochs))
    assert "backup" not in os.listdir(run_dir)
    assert json.load(open(run_dir / "metrics.json"))["distribution"]["workers"] == 2
