"""Bounds and code checks on a `.keras` archive, read from its zip directory and config alone.

`keras_zoo.weights.load_keras_archive` (the one loader of every `.keras` file) and
`keras_zoo.export.scan` call `check_archive_is_safe` before anything is inflated or built.
"""

from __future__ import annotations

import json
import zipfile

# Bounds on a .keras archive, checked from its directory before anything is inflated.
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_CONFIG_BYTES = 64 << 20      # config.json / metadata.json: a few KB to a few MB in practice
MAX_ARCHIVE_BYTES = 4 << 30              # all members inflated (the largest zoo model's weights: ~100 MB)
MAX_COMPRESSION_RATIO = 200              # weights barely compress; JSON ~10x; a bomb 1000x or more
RATIO_FLOOR_BYTES = 1 << 20              # below this, a member (or the whole archive) may compress as it likes


class ArchiveBombError(ValueError):
    """A `.keras` archive whose members would inflate beyond the limits."""


class UnsafeArchiveError(ValueError):
    """A `.keras` archive needs unsafe deserialisation (arbitrary code) to load; it is refused."""


def check_archive_members(path: str, members) -> None:
    """Refuse an archive by its directory alone: member count, sizes, each member's compression
    ratio and the whole archive's (many small members of zeros inflate as much as one large one)."""
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ArchiveBombError(f"refusing {path!r}: {len(members)} members, more than {MAX_ARCHIVE_MEMBERS}")
    total = packed = 0
    for info in members:
        total += info.file_size
        packed += info.compress_size
        json_member = info.filename.endswith(".json")
        if json_member and info.file_size > MAX_ARCHIVE_CONFIG_BYTES:
            raise ArchiveBombError(f"refusing {path!r}: member {info.filename!r} inflates to {info.file_size} "
                                   f"bytes, more than the {MAX_ARCHIVE_CONFIG_BYTES}-byte limit for a config")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ArchiveBombError(f"refusing {path!r}: member {info.filename!r} would inflate {ratio:.0f}x "
                                   f"({info.compress_size} -> {info.file_size} bytes; limit "
                                   f"{MAX_COMPRESSION_RATIO}x), the mark of an archive bomb")
    if total > MAX_ARCHIVE_BYTES:
        raise ArchiveBombError(f"refusing {path!r}: its members inflate to {total} bytes, more than the "
                               f"{MAX_ARCHIVE_BYTES}-byte limit")
    ratio = total / max(packed, 1)
    if total > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise ArchiveBombError(f"refusing {path!r}: its {len(members)} members would inflate {ratio:.0f}x in "
                               f"all ({packed} -> {total} bytes; limit {MAX_COMPRESSION_RATIO}x), the mark "
                               "of an archive bomb")


def walk_config(config):
    """Every dictionary inside a ``.keras`` archive's ``config.json`` tree, depth first (layers, their nested configs)."""
    if isinstance(config, dict):
        yield config
        for value in config.values():
            yield from walk_config(value)
    elif isinstance(config, list):
        for value in config:
            yield from walk_config(value)


def read_config(path: str) -> dict:
    """The archive's ``config.json`` after `check_archive_members`; ValueError when unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive_members(path, archive.infolist())
            # zipfile stops inflating a member at its declared size, which was checked above.
            with archive.open("config.json") as member:
                return json.loads(member.read(MAX_ARCHIVE_CONFIG_BYTES + 1))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path!r} is not a readable .keras archive ({err})") from None


def unsafe_layers(config) -> list[tuple[str, str]]:
    """``(class name, layer name)`` of every config node that needs Python code to rebuild."""
    found = []
    for node in walk_config(config):
        if node.get("class_name") in ("Lambda", "function", "__lambda__") or "__lambda__" in node:
            inner = node.get("config")
            layer = inner.get("name", node.get("class_name")) if isinstance(inner, dict) else node.get("class_name")
            found.append((node.get("class_name"), layer))
    return found


def check_archive_is_safe(path: str) -> None:
    """Refuse a `.keras` archive whose config needs arbitrary code to rebuild, or that would inflate
    beyond the limits (`check_archive_members`).

    Keras's safe mode refuses such archives too; reading the config first gives a message that says
    which layer asked for it, before any object is built.
    """
    for class_name, layer in unsafe_layers(read_config(path))[:1]:
        raise UnsafeArchiveError(
            f"refusing to load {path!r}: it contains {class_name!r} ({layer!r}), whose "
            "Python code would have to be deserialised to rebuild it. keras_zoo loads archives in "
            "Keras's safe mode only; rebuild the model from registered layers instead of Lambda.")
