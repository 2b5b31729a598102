"""Training under `tf.distribute`: strategy names, batch semantics, 2 replicas == 1 device, and a
two-process multi-worker cluster on 127.0.0.1 (chief-only writes, a killed worker rejoining).

Two logical CPU devices must be configured before TensorFlow starts, so everything that needs them
runs in a subprocess (tests/distributed_step.py, tests/multi_worker_train.py); this process keeps
its one device and the rest of the suite is unaffected.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_zoo import distribute
from keras_zoo.recipes import get_recipe

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", **extra)
    env.pop("TF_CONFIG", None)
    return env


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


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

def _two_replica_steps(which):
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_step.py"), which], env=_env(),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _json_lines(proc.stdout)


@pytest.fixture(scope="module")
def rest_of_the_models():
    """One subprocess: the step of every model not in the "first" group on 1 device and on 2
    replicas, then a short `train` under MirroredStrategy with per-replica batches and linear LR
    scaling."""
    return _two_replica_steps("rest")


def _check_steps(records, which):
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


def test_one_model_of_each_recipe_takes_the_same_step_on_two_replicas_as_on_one_device():
    _check_steps(_two_replica_steps("first"), "first")


@pytest.mark.slow
def test_every_other_model_takes_the_same_step_on_two_replicas_as_on_one_device(rest_of_the_models):
    _check_steps(rest_of_the_models, "rest")


@pytest.mark.slow
def test_train_under_mirrored_records_global_batch_and_scaled_learning_rate(rest_of_the_models):
    (record,) = [r for r in rest_of_the_models if "distribution" in r]
    assert record["distribution"] == {
        "strategy": "mirrored", "replicas": 2, "workers": 1, "batch_semantics": "per_replica",
        "global_batch_size": 64, "per_replica_batch_size": 32, "lr_scaling": "linear",
        "learning_rate": pytest.approx(2 * record["recipe_learning_rate"])}
    assert record["accuracy"] > 0.5
    # Saved as one device would save it: batch-norm layers not left synchronized.
    assert record["synchronized_left"] == 0


@pytest.mark.slow
def test_a_search_trains_its_trials_under_the_strategy(rest_of_the_models):
    (record,) = [r for r in rest_of_the_models if "trial" in r]
    assert record["replicas"] == 2
    assert np.isfinite(record["trial"]["score"]) and record["trial"]["accuracy"] > 0.3


# === Two worker processes on 127.0.0.1 ===

def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(run_dir, ports, epochs, kill_after=None, only=None):
    script = os.path.join(HERE, "multi_worker_train.py")
    extra = [str(kill_after)] if kill_after else []
    procs = [subprocess.Popen([sys.executable, script, str(run_dir), str(i), ",".join(map(str, ports)),
                               str(epochs), *extra], env=_env(), stdout=subprocess.PIPE,
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
    epochs = 10
    single = subprocess.Popen([sys.executable, os.path.join(HERE, "multi_worker_train.py"),
                               str(tmp_path / "single"), "single", "0", str(epochs)], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ((code, stdout, stderr),) = _finish([single])
    assert code == 0, stderr[-3000:]
    (alone,) = _json_lines(stdout)

    run_dir = tmp_path / "cluster"
    results = _finish(_workers(run_dir, _free_ports(2), epochs))
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    chief, worker = (_json_lines(stdout)[0] for _, stdout, _ in results)
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
    epochs, run_dir, ports = 4, tmp_path / "cluster", _free_ports(2)

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
