"""Where the decoded examples of `load_splits` are cached: in memory, in files, or not at all.

Examples are cached as stored (uint8 for 8-bit images), so the cache costs count x H x W x C bytes.
``cache="auto"`` (the default) estimates that size from the pipelines' element specs and keeps it in
memory when it fits the memory budget (`memory_budget`: a fraction of the memory available now), in
files under a fresh temporary folder when it does not but fits the free disk space there, and
otherwise does not cache. `plan` says which, with the figures, in one log line.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import shutil
import tempfile

logger = logging.getLogger(__name__)

CACHE_MODES = ("auto", "memory", "file", "none")
# Share of the memory available at load time that an in-memory cache may take: the rest is left to
# the model, its optimizer state, the shuffle buffer and the other processes on the machine.
MEMORY_FRACTION = 0.5
# Files are written only where they leave this share of the free disk space free.
DISK_FRACTION = 0.8


@dataclasses.dataclass(frozen=True)
class CachePlan:
    """What to do with one `load_splits` call's splits: mode "memory", "file" or "none"."""

    mode: str
    nbytes: int
    budget: int
    prefix: str | None = None  # mode "file": each split caches to files "<prefix>.<split>*"

    def apply(self, ds, split: str):
        if self.mode == "memory":
            return ds.cache()
        if self.mode == "file":
            return ds.cache(f"{self.prefix}.{split}")
        return ds


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux MemAvailable; total memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_budget() -> int:
    """The default in-memory cache budget: `MEMORY_FRACTION` of `available_memory()`."""
    return int(available_memory() * MEMORY_FRACTION)


def example_bytes(element_spec) -> int:
    """Bytes one element of this (nested) spec takes, from its static shapes and dtypes."""
    import tensorflow as tf

    total = 0
    for spec in tf.nest.flatten(element_spec):
        size = 1
        for d in spec.shape:
            size *= 1 if d is None else int(d)
        total += size * spec.dtype.size
    return total


def plan(datasets: dict, counts: dict, cache, budget: int | None = None, name: str = "") -> CachePlan:
    """Choose the cache for `datasets` (split -> unbatched pipeline) holding `counts` examples.

    `cache` is "auto", "memory", "file" or "none" (True and False mean "memory" and "none"), or another
    string: a file prefix to cache to. `budget` is the memory budget in bytes (default `memory_budget()`).
    """
    mode = {True: "memory", False: "none"}.get(cache, cache)
    nbytes = sum(example_bytes(ds.element_spec) * int(counts[split]) for split, ds in datasets.items())
    budget = memory_budget() if budget is None else int(budget)
    size = f"{_human(nbytes)} decoded"
    if mode not in CACHE_MODES:  # a file prefix chosen by the caller
        chosen = CachePlan("file", nbytes, budget, prefix=mode)
        logger.info("data %s: caching %s in files %s.<split>", name, size, mode)
        return chosen
    if mode == "auto":
        if nbytes <= budget:
            mode, why = "memory", f"within the memory budget of {_human(budget)}"
        else:
            free = shutil.disk_usage(tempfile.gettempdir()).free
            if nbytes <= free * DISK_FRACTION:
                mode, why = "file", f"over the memory budget of {_human(budget)}"
            else:
                mode, why = "none", (f"over the memory budget of {_human(budget)} and the free disk space "
                                     f"in {tempfile.gettempdir()} ({_human(free)})")
    else:
        why = f"as asked (cache={cache!r})"
    folder = _temporary_folder() if mode == "file" else None
    where = {"memory": "caching in memory", "file": f"caching in files under {folder}",
             "none": "not caching (decoding every epoch)"}[mode]
    logger.info("data %s: %s, %s; %s", name, size, why, where)
    return CachePlan(mode, nbytes, budget, os.path.join(folder, "cache") if folder else None)


def _temporary_folder() -> str:
    """A fresh folder for one call's cache files (never another call's stale ones), removed at exit."""
    folder = tempfile.mkdtemp(prefix="keras_zoo_cache_")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _human(nbytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"
