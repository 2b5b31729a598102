"""Crashes and full disks: killed processes (SIGKILL), crashes injected at the exact point, ENOSPC."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import pytest

import keras_zoo
from keras_zoo import _io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _tree(folder, text):
    os.makedirs(folder)
    with open(os.path.join(folder, "saved_model.pb"), "w") as f:
        f.write(text)


# A process publishes version 1 over an existing one and is SIGKILLed right after the first rename
# (the old tree moved aside, the new one not yet in place), the moment issue 14 saw lose a version.
_KILL_BETWEEN_RENAMES = """
    import os, signal
    from keras_zoo import _io
    _io._exchange = None  # the two-rename path (file systems without an atomic swap)
    real, calls = os.replace, []
    def replace(a, b):
        real(a, b)
        calls.append(b)
        if ".old." in os.path.basename(b):
            os.kill(os.getpid(), signal.SIGKILL)
    _io.os.replace = replace
    _io.replace_directory("staged", os.path.join("served", "1"))
"""


def test_killed_between_the_two_renames_is_repaired_by_the_next_call(tmp_path):
    _tree(tmp_path / "served" / "1", "old")
    _tree(tmp_path / "staged", "new")
    proc = _python(_KILL_BETWEEN_RENAMES, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (tmp_path / "served" / "1").exists()  # the crash hit between the renames
    hidden = sorted(os.listdir(tmp_path / "served"))
    assert any(".1.old." in h for h in hidden) and any(".1.ready." in h for h in hidden)
    # The next publication in that folder (any version) first finishes the interrupted one.
    _tree(tmp_path / "staged2", "v2")
    _io.replace_directory(str(tmp_path / "staged2"), str(tmp_path / "served" / "2"))
    assert (tmp_path / "served" / "1" / "saved_model.pb").read_text() == "new"
    assert (tmp_path / "served" / "2" / "saved_model.pb").read_text() == "v2"
    assert sorted(os.listdir(tmp_path / "served")) == ["1", "2"]


def test_repair_restores_the_old_tree_when_the_new_one_never_was_complete(tmp_path):
    _tree(tmp_path / "served" / ".1.old.abc", "old")
    assert _io.repair_publications(str(tmp_path / "served")) == ["1"]
    assert (tmp_path / "served" / "1" / "saved_model.pb").read_text() == "old"


@pytest.mark.skipif(_io._exchanger() is None, reason="no renameat2 on this platform")
def test_atomic_swap_never_leaves_the_target_missing(tmp_path):
    _tree(tmp_path / "served" / "1", "old")
    _tree(tmp_path / "staged", "new")
    # Killed right after the swap, before the old tree is deleted: the new version is in place.
    proc = _python("""
        import os, signal, shutil
        from keras_zoo import _io
        _io.shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        _io.replace_directory("staged", os.path.join("served", "1"))
    """, tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "served" / "1" / "saved_model.pb").read_text() == "new"


# === Training backups ===

_TRAIN = """
    import os, signal, sys
    import keras, keras_zoo
    KILL_AT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    saves = []
    real = keras.Model.save_weights
    def save_weights(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        saves.append(path)
        if len(saves) == KILL_AT:  # half of the new generation is on disk when the process dies
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    keras.Model.save_weights = save_weights
    result = keras_zoo.train("mlp_lecture", "moons", epochs=4, run_dir="run", verbose=0)
    print("EPOCHS", len(result.history["loss"]))
"""


@pytest.mark.slow
def test_a_process_killed_while_writing_its_backup_resumes_from_the_last_whole_one(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_TRAIN))

    def train(*args):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    killed = train("3")  # SIGKILL in the middle of the third epoch's backup
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    with open(tmp_path / "run" / "backup" / "state.json") as f:
        assert json.load(f)["epoch"] == 2  # still the last complete generation
    resumed = train()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "EPOCHS 2" in resumed.stdout  # epochs 3 and 4 only
    assert "unusable" not in resumed.stderr  # nothing half-written was ever pointed at


def _crash_after(epoch):
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, e, logs=None):
            if e == epoch - 1:
                raise RuntimeError(f"simulated crash after epoch {epoch}")
    return Crash()


@pytest.mark.slow
def test_a_corrupt_latest_backup_is_reported_and_the_previous_one_used(tmp_path, caplog):
    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated crash"):
        keras_zoo.train("mlp_lecture", "moons", epochs=4, run_dir=run, verbose=0, callbacks=[_crash_after(2)])
    with open(os.path.join(run, "backup", "state.json")) as f:
        state = json.load(f)
    assert (state["epoch"], state["previous"]["epoch"]) == (2, 1)
    latest = os.path.join(run, "backup", state["weights"])
    with open(latest, "r+b") as f:  # the disk lost the end of the newest generation
        f.truncate(os.path.getsize(latest) // 2)
    with caplog.at_level("WARNING", logger="keras_zoo"):
        result = keras_zoo.train("mlp_lecture", "moons", epochs=4, run_dir=run, verbose=0)
    assert len(result.history["loss"]) == 3  # epochs 2, 3, 4: epoch 1's generation was used
    lines = [r.getMessage() for r in caplog.records if "backup" in r.getMessage()]
    assert any("epoch 2 is unusable" in m and "sha256" in m and "previous one" in m for m in lines), lines


def test_disk_full_while_backing_up_is_one_message_naming_the_file_and_the_run_resumes(tmp_path, monkeypatch):
    import errno

    from keras_zoo.recipes.backup import DiskFullError

    run = str(tmp_path / "run")
    real, calls = keras.Model.save_weights, []

    def save_weights(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"\x89HDF partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    with pytest.raises(DiskFullError) as caught:
        keras_zoo.train("mlp_lecture", "moons", epochs=3, run_dir=run, verbose=0)
    message = str(caught.value)
    assert "no space left on the device writing" in message and "epoch-00002" in message
    assert "previous backup (epoch 1) is intact" in message and "\n" not in message
    backup = os.listdir(os.path.join(run, "backup"))
    assert sorted(backup) == ["epoch-00001-batch-000000.weights.h5", "state.json"]  # no partial file kept
    monkeypatch.setattr(keras.Model, "save_weights", real)
    result = keras_zoo.train("mlp_lecture", "moons", epochs=3, run_dir=run, verbose=0)
    assert len(result.history["loss"]) == 2


@pytest.mark.slow
def test_disk_full_in_the_cli_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    from keras_zoo import cli

    monkeypatch.chdir(tmp_path)
    real, calls = keras.Model.save_weights, []

    def save_weights(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28, No space left on device)")
        return real(self, path, *args, **kwargs)

    command = ["train", "mlp_lecture", "--data", "moons", "--epochs", "2", "--out", "run", "--no-export"]
    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    assert cli.main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("keras-zoo:")]) == 1 and "Traceback" not in "".join(err)
    assert "no space left on the device writing" in err[-1] and os.path.join("run", "backup") in err[-1]
    assert "previous backup (epoch 1) is intact" in err[-1]  # resuming is tested through the API above
