"""Atomic file and directory writes: whatever the package writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil


def _sibling(folder: str, prefix: str, suffix: str) -> str:
    """An unused hidden name in `folder` for a temporary file or directory."""
    return os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{suffix}")


def _new_file(folder: str, prefix: str, suffix: str) -> str:
    """Create an empty temporary file in `folder` as `open()` would: mode 0o666 less the umask.

    (`tempfile.mkstemp` makes owner-only files; what the package publishes should be as readable
    as anything else the user writes, since a model server often runs as another user.)
    """
    while True:
        path = _sibling(folder, prefix, suffix)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def staging_dir(parent: str, prefix: str) -> str:
    """Create a temporary directory in `parent` as `mkdir` would (0o777 less the umask), to fill
    and then publish with `replace_directory`."""
    os.makedirs(parent, exist_ok=True)
    while True:
        path = _sibling(parent, prefix, "")
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


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
    tmp = _new_file(folder, f".{os.path.basename(path)}.", suffix or ".tmp")
    try:
        yield tmp
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
    trash = None
    if os.path.exists(target):
        trash = _sibling(os.path.dirname(target), f".{os.path.basename(target)}.old.", "")
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
