"""Crashes and full disks: killed processes (SIGKILL), crashes injected at the exact point, ENOSPC."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

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


@pytest.mark.skipif(_io._exchange is None, reason="no renameat2 on this platform")
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
