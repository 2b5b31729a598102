"""Atomic file and directory writes: whatever the package writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


def _default_mode(directory: bool = False) -> int:
    """The mode `open`/`mkdir` would give a new file (0o666) or directory (0o777) under the umask.

    `tempfile` creates owner-only files and directories (0o600/0o700); what the package publishes
    should be as readable as anything else the user writes (a model server often runs as another user).
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def atomic_write_bytes(path: str, data: bytes) -> str:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return os.fspath(path)


def atomic_write_text(path: str, text: str) -> str:
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it is renamed to `path`.

    For writers that insist on a file name of their own (``model.save`` wants ``.keras``, matplotlib a
    ``.png``): they write the temporary path, and readers never see a partial file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace_directory(staged: str, target: str) -> str:
    """Move a fully written directory `staged` to `target`, replacing any previous `target`.

    The old directory is first renamed aside, so at every instant `target` is either the complete
    old tree or the complete new one.
    """
    staged, target = os.fspath(staged), os.fspath(target)
    os.chmod(staged, _default_mode(directory=True))  # staged with tempfile.mkdtemp: owner-only
    trash = None
    if os.path.exists(target):
        trash = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old.", dir=os.path.dirname(target))
        os.rmdir(trash)
        os.replace(target, trash)
    try:
        os.replace(staged, target)
    except BaseException:
        if trash is not None:
            os.replace(trash, target)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return target
