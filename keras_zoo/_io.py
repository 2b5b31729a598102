"""Atomic file and directory writes: whatever the package writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
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


def sha256_of(path: str, algorithm: str = "sha256") -> str:
    """The hex sha256 of a file, read in 1 MiB blocks (or its md5 with ``algorithm="md5"``, for
    publishers that record only that)."""
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"hash algorithm {algorithm!r} is not one of ['md5', 'sha256']")
    digest = hashlib.sha256() if algorithm == "sha256" else hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _exchange_function():
    """Linux's renameat2(RENAME_EXCHANGE) through libc: swaps two paths in one atomic step.

    Looked up on first use, not at import: finding libc can run ``ldconfig``, a cost every
    ``keras-zoo`` command would otherwise pay."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return None
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(a: str, b: str) -> bool:
        at_cwd, rename_exchange = -100, 2
        if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
            return True
        err = ctypes.get_errno()
        if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot swap
            return False
        raise OSError(err, os.strerror(err), b)

    return exchange



def repair_publications(folder: str) -> list[str]:
    """Finish or undo publications in `folder` that a killed process left half done.

    `replace_directory` renames a complete new tree to ``.<name>.ready.*`` and the old one to
    ``.<name>.old.*``; if ``<name>`` is missing, the ready tree (else the old one) is moved back into
    place. Leftover old trees of published names are removed. Returns the names restored.
    """
    restored = []
    if not os.path.isdir(folder):
        return restored
    entries = sorted(os.listdir(folder))
    for kind in (".ready.", ".old."):
        for entry in entries:
            if not entry.startswith(".") or kind not in entry:
                continue
            name = entry[1:entry.rindex(kind)]
            path, target = os.path.join(folder, entry), os.path.join(folder, name)
            if not os.path.exists(path):
                continue
            if not os.path.exists(target):
                with contextlib.suppress(OSError):  # another process got there first
                    os.rename(path, target)
                    restored.append(name)
                    continue
            if kind == ".old.":
                shutil.rmtree(path, ignore_errors=True)
    return restored


# The swap function, looked up on first use; None where the platform has none. Tests set it to None
# to take the two-rename path.
_UNRESOLVED = object()
_exchange = _UNRESOLVED


def _exchanger():
    global _exchange
    if _exchange is _UNRESOLVED:
        _exchange = _exchange_function()
    return _exchange


def replace_directory(staged: str, target: str) -> str:
    """Move a fully written directory `staged` to `target`, replacing any previous `target`.

    Where the file system can swap two paths atomically (Linux renameat2), `target` is at every
    instant the complete old tree or the complete new one. Elsewhere the old tree is renamed aside
    first; a process killed between the two renames leaves `target` missing for the moment, and the
    next call in the same folder (or `repair_publications`) puts the complete new tree, or else the
    old one, back in place.
    """
    staged, target = os.fspath(staged), os.fspath(target)
    folder, name = os.path.dirname(target) or ".", os.path.basename(target)
    repair_publications(folder)
    if os.path.exists(target) and _exchanger() is not None and _exchange(staged, target):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the old tree
        return target
    ready = _sibling(folder, f".{name}.ready.", "")
    os.replace(staged, ready)  # marks the tree complete: a repair may move it into place
    trash = None
    if os.path.exists(target):
        trash = _sibling(folder, f".{name}.old.", "")
        os.replace(target, trash)
    try:
        os.replace(ready, target)
    except BaseException:
        if trash is not None and not os.path.exists(target):
            os.replace(trash, target)
        shutil.rmtree(ready, ignore_errors=True)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return target
