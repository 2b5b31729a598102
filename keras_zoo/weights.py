"""The pretrained weight store: shipped checkpoints, their manifest, sha256 checks and a download cache.

Checkpoints trained by this package's own recipes on offline data live in the repository's top-level
``saved_models/`` (the source of truth) beside ``saved_models/manifest.json``, which records for each
one how it was made, what it scored on held-out data, what inputs it expects and its sha256. A built
wheel carries a copy inside the package (``keras_zoo/saved_models/``, copied by ``setup.py``), so an
installed package loads its weights offline from any working directory.

Every load re-checks the sha256 and keeps Keras's safe mode on; an archive that asks for unsafe
deserialisation (a ``Lambda`` layer, say) is refused. Weights from elsewhere (a path or an http(s)
URL) need their sha256: downloads go through a temporary file into the cache
(``$KERAS_ZOO_HOME``, default ``~/.keras/keras_zoo``) and are renamed into place only when the hash
matches.

This module imports Keras only inside the functions that load, so the factory (and the CLI's
``list``) can ask it which models have weights without importing TensorFlow.

The checkpoints are built by `keras_zoo.pretrain` (``python -m keras_zoo.pretrain build NAME --tag TAG``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.parse
import urllib.request

from keras_zoo._io import atomic_path, sha256_of

log = logging.getLogger("keras_zoo")

MANIFEST = "manifest.json"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Installed copy first (inside the package, put there by setup.py's build step), then the
# repository's own folder when running from a checkout.
_STORE_CANDIDATES = (os.path.join(_PACKAGE_DIR, "saved_models"),
                     os.path.join(os.path.dirname(_PACKAGE_DIR), "saved_models"))
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Hex digest lengths. md5 is accepted only where a publisher records nothing stronger: Keras's own
# table of ImageNet weights (keras_zoo.imagenet) lists md5 for most files, and checking that is what
# Keras itself does.
_HEX_LENGTHS = {"sha256": 64, "md5": 32}


class WeightIntegrityError(ValueError):
    """A weight file's sha256 (or length) is not the one it was published with."""


from keras_zoo.export.archive import UnsafeArchiveError  # noqa: E402,F401  (public name)


# --------------------------------------------------------------------------- where things are


def store_dir() -> str:
    """The folder holding the shipped checkpoints and ``manifest.json``."""
    for folder in _STORE_CANDIDATES:
        if os.path.exists(os.path.join(folder, MANIFEST)):
            return folder
    return _STORE_CANDIDATES[-1]


def source_store_dir() -> str:
    """The repository's own ``saved_models/`` (where `keras_zoo.pretrain` writes new checkpoints)."""
    return _STORE_CANDIDATES[-1]


def cache_dir() -> str:
    """The download cache: ``$KERAS_ZOO_HOME/weights`` (default ``~/.keras/keras_zoo/weights``)."""
    home = os.environ.get("KERAS_ZOO_HOME") or os.path.join(os.path.expanduser("~"), ".keras", "keras_zoo")
    return os.path.join(home, "weights")


# --------------------------------------------------------------------------- the manifest


def read_manifest(store: str | None = None) -> dict:
    """The manifest as a dict ``{"format": 1, "entries": [...]}`` (empty when nothing ships)."""
    path = os.path.join(store or store_dir(), MANIFEST)
    if not os.path.exists(path):
        return {"format": 1, "entries": []}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def entries(name: str | None = None, store: str | None = None) -> list[dict]:
    """Manifest entries, all or those of one model, default entry first."""
    found = [e for e in read_manifest(store)["entries"] if name is None or e["name"] == name]
    return sorted(found, key=lambda e: (e["name"], not e.get("default"), e["tag"]))


def pretrained_names(store: str | None = None) -> list[str]:
    """Registry names that have at least one shipped checkpoint."""
    return sorted({e["name"] for e in entries(store=store)})


def tags(name: str, store: str | None = None) -> list[str]:
    """Tags of the shipped checkpoints of `name`, the default first."""
    return [e["tag"] for e in entries(name, store)]


def get_entry(name: str, tag=True, store: str | None = None) -> dict:
    """The manifest entry of ``name`` (``tag=True``: its default checkpoint).

    Raises:
        KeyError: no weights for `name`, or no such tag; the message lists what is available.
    """
    found = entries(name, store)
    if not found:
        raise KeyError(f"no pretrained weights for model {name!r}; models with weights: "
                       f"{pretrained_names(store) or 'none'}")
    if tag is True:
        return found[0]
    for entry in found:
        if entry["tag"] == tag:
            return entry
    raise KeyError(f"no pretrained weights {name}:{tag}; available tags for {name!r}: "
                   f"{[e['tag'] for e in found]}")


def closest_tag(name: str, input_shape, store: str | None = None) -> str:
    """The tag of `name`'s checkpoint whose input contract fits images of `input_shape` best: the
    same channel count first (a colour checkpoint for colour data: features learnt on grayscale
    digits see nothing of a photo's colour), then the least resizing (shrinking counts double, as it
    throws detail away), then the default tag."""
    found = entries(name, store)
    if not found:
        get_entry(name, True, store)  # raises with the models that have weights
    want = tuple(int(d) for d in input_shape)

    def cost(entry):
        have = tuple(entry["input_contract"]["shape"])
        if len(have) != len(want) or len(want) != 3:
            return (float("inf"),) * 3
        scale = 1.0
        for h, w in zip(have[:2], want[:2]):
            ratio = h / w
            scale *= ratio if ratio >= 1 else (1 / ratio) ** 2
        return (have[2] != want[2], scale, not entry.get("default"))

    return min(found, key=cost)["tag"]


def shrink_factor(contract_shape, input_shape) -> float:
    """How many times smaller (per side, the larger of the two) the contract is than the images."""
    return max(float(i) / float(c) for i, c in zip(tuple(input_shape)[:2], tuple(contract_shape)[:2]))


def pretrained_cfg(entry: dict):
    """What a model loaded from the store carries as ``model.pretrained_cfg``: its manifest entry
    (tag, input contract, class names, training data and licence, held-out metrics, sha256), read-only."""
    import copy
    import types

    return types.MappingProxyType(copy.deepcopy(entry))


def model_card(entry: dict) -> str:
    """A model card for one shipped checkpoint, generated from its manifest entry (Markdown)."""
    contract = entry["input_contract"]
    shape = "x".join(map(str, contract["shape"]))
    data = entry["dataset"]
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in entry["metrics"].items() if k != "split")
    classes = entry.get("class_names") or []
    lines = [
        f"# {entry['name']}:{entry['tag']}{' (default)' if entry.get('default') else ''}",
        "",
        f"{entry['family']} family, task {entry['task']}, {entry['parameters']:,} parameters.",
        "",
        "## Intended data",
        f"- Trained on: {data['description']} (source `{data['source']}`"
        + (f", classes {data['classes']}" if data.get("classes") is not None else "") + ").",
        f"- Data licence: {data.get('licence') or 'not recorded'}.",
        f"- Classes ({len(classes)}): {', '.join(map(str, classes))}." if classes else
        "- No classes (a self-supervised or generative model).",
        "",
        "## Input contract",
        f"- float32 images {shape} ({contract['layout']}), values in [{contract['value_range'][0]}, "
        f"{contract['value_range'][1]}]; {contract.get('note', 'pixel values divided by 255')}.",
        "",
        "## Held-out metrics",
        f"- On the {entry['metrics']['split']} split ({data['split'].get('held_out', 'test')}, seed "
        f"{data['split']['seed']}): {metrics}.",
        "",
        "## Limitations",
        f"- Seen only {data['description']}; other images (other sizes, colours, subjects) are outside "
        "what it was measured on.",
        f"- Other image sizes must be resized to {shape}: `keras_zoo.finetune` does it inside the model "
        "and warns when it shrinks images by more than 2x, which loses detail.",
        f"- Trained for {entry['epochs_run']} epochs in {entry['train_seconds']:.0f} s with Keras "
        f"{entry['keras_version']}, TensorFlow {entry['tensorflow_version']}.",
        *_training_lines(entry),
        "",
        "## Provenance",
        f"- Reproduce: `{entry['command']}`.",
        f"- File `{entry['file']}`, {entry['size_bytes']:,} bytes, sha256 `{entry['sha256']}`.",
    ]
    return "\n".join(lines) + "\n"


def _training_lines(entry: dict) -> list:
    """The card's lines on the recipe and the machine a checkpoint was trained with, where recorded."""
    lines = []
    recipe = entry.get("recipe") or {}
    if recipe.get("name") and recipe.get("description"):
        lines.append(f"- Recipe `{recipe['name']}` ({recipe['description']}), run for {recipe.get('epochs')} epochs.")
    machine = entry.get("machine")
    if machine:
        flags = ", ".join(machine.get("flags") or []) or "no vector flags recorded"
        load = machine.get("load")
        lines.append(f"- Trained on {machine.get('cpu') or 'an unnamed CPU'}, {machine.get('cores')} cores ({flags})"
                     + (f", 1-minute load average {load[0]:g} at the end." if load else "."))
    return lines


# --------------------------------------------------------------------------- integrity


def _new_digest(algorithm: str):
    if algorithm not in _HEX_LENGTHS:
        raise ValueError(f"hash algorithm {algorithm!r} is not one of {sorted(_HEX_LENGTHS)}")
    return hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.sha256()


def _check_sha256_argument(sha256, algorithm: str = "sha256") -> str:
    if algorithm != "sha256":
        _new_digest(algorithm)
        if not isinstance(sha256, str) or not re.fullmatch(
                rf"[0-9a-f]{{{_HEX_LENGTHS[algorithm]}}}", sha256.lower()):
            raise ValueError(f"an {algorithm} hash must be {_HEX_LENGTHS[algorithm]} hexadecimal "
                             f"characters, got {sha256!r}")
        return sha256.lower()
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}; weights from a path "
                         "or URL load only with the hash they were published with")
    return sha256.lower()


def verify(path: str, sha256: str, size: int | None = None, *, algorithm: str = "sha256") -> str:
    """Check a file's length (when known) and sha256 (or the `algorithm`'s hash); raise
    `WeightIntegrityError` if they differ."""
    sha256 = _check_sha256_argument(sha256, algorithm)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path!r}")
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != size:
        raise WeightIntegrityError(f"weight file {path!r} has {actual_size} bytes, expected {size} "
                                   "(truncated or replaced); it was not loaded")
    actual = sha256_of(path, algorithm)
    if actual != sha256:
        raise WeightIntegrityError(f"weight file {path!r} has {algorithm} {actual}, expected {sha256} "
                                   "(corrupted or tampered with); it was not loaded")
    return path


# --------------------------------------------------------------------------- fetching


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


MAX_DOWNLOAD_BYTES = 4 << 30  # the largest checkpoint a zoo model has is tens of MB


def _download(url: str, target: str, sha256: str, timeout: float, max_bytes: int = MAX_DOWNLOAD_BYTES,
              algorithm: str = "sha256", limit_name: str = "max_bytes=") -> None:
    """Stream `url` into a temporary file beside `target`, hashing as it goes; rename on a match.
    A download that announces or reaches more than `max_bytes` is abandoned."""
    with atomic_path(target, suffix=".part") as tmp:
        digest, received = _new_digest(algorithm), 0
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            expected_length = response.headers.get("Content-Length")
            if expected_length is not None and int(expected_length) > max_bytes:
                raise WeightIntegrityError(f"download of {url} announces {expected_length} bytes, more than "
                                           f"the limit of {max_bytes} ({limit_name}); nothing was kept")
            for block in iter(lambda: response.read(1 << 20), b""):
                received += len(block)
                if received > max_bytes:
                    raise WeightIntegrityError(f"download of {url} went past the limit of {max_bytes} "
                                               f"bytes ({limit_name}); nothing was kept")
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if expected_length is not None and received != int(expected_length):
            raise WeightIntegrityError(f"download of {url} stopped after {received} of "
                                       f"{expected_length} bytes; nothing was kept")
        if digest.hexdigest() != sha256:
            raise WeightIntegrityError(f"download of {url} has {algorithm} {digest.hexdigest()}, expected "
                                       f"{sha256}; nothing was kept")


def cached_path(url: str, sha256: str, cache: str | None = None) -> str:
    """Where `fetch` keeps (and looks for) the download of `url` with hash `sha256`."""
    name = os.path.basename(urllib.parse.urlparse(url).path) or "weights.keras"
    # The hash is part of the cache name, so two different files with the same basename never collide.
    return os.path.join(cache or cache_dir(), f"{sha256.lower()[:16]}-{name}")


def fetch(source: str, sha256: str, *, cache: str | None = None, timeout: float = 60.0,
          max_bytes: int = MAX_DOWNLOAD_BYTES, algorithm: str = "sha256", size: int | None = None) -> str:
    """A verified local copy of a weight file from a path or an http(s) URL.

    A local path is checked in place. A URL is downloaded into the cache once; a cached file is
    re-hashed on every call, and one that no longer matches (truncated, edited) is discarded and
    downloaded again.

    Args:
        source: a file path, or an ``http://``/``https://`` URL.
        sha256: the file's published sha256 (required).
        cache: the cache folder (default `cache_dir()`).
        timeout: seconds to wait for the server.
        max_bytes: a download larger than this is abandoned (default 4 GiB).
        algorithm: ``"sha256"``, or ``"md5"`` where the publisher records only that (Keras's
            ImageNet weights).
        size: the file's length in bytes where it is known (a manifest's ``size_bytes``): a
            download stops as soon as it goes past it, and a local or cached file of another
            length is refused before it is hashed.

    Returns:
        The path of the verified file.

    Example:
        >>> path = fetch("https://example.org/cnn_small.keras", sha256="9f2c...")
    """
    sha256 = _check_sha256_argument(sha256, algorithm)
    source = os.fspath(source)
    if not _is_url(source):
        if "://" in source:
            raise ValueError(f"weights can come from a file path or an http(s) URL, got {source!r}")
        return verify(source, sha256, size, algorithm=algorithm)
    limit_name = "max_bytes="
    if size is not None:
        size = int(size)
        if size < max_bytes:
            max_bytes, limit_name = size, "the expected size, size="
    target = cached_path(source, sha256, cache)
    if os.path.exists(target):
        try:
            return verify(target, sha256, size, algorithm=algorithm)
        except WeightIntegrityError as err:
            log.warning("cached weights failed their check (%s); downloading %s again", err, source)
            os.unlink(target)
    log.info("downloading %s to %s", source, target)
    _download(source, target, sha256, timeout, max_bytes, algorithm, limit_name)
    return target


# --------------------------------------------------------------------------- loading


# The archive checks live with the other model-file checks (keras_zoo.export.archive); their
# names stay importable from here.
from keras_zoo.export.archive import (  # noqa: E402,F401
    MAX_ARCHIVE_BYTES, MAX_ARCHIVE_CONFIG_BYTES, MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO,
    ArchiveBombError, check_archive_is_safe, check_archive_members)


def load_keras_archive(path: str):
    """`keras.saving.load_model` in safe mode, uncompiled, with the package's custom objects known.

    The one loader of every `.keras` file the package opens: the archive is checked first
    (`check_archive_is_safe`), then loaded with Keras's safe mode on.
    """
    import keras

    import keras_zoo.models  # noqa: F401  (custom layers register themselves when their family is imported)
    import keras_zoo.recipes.objectives  # noqa: F401  (custom losses/metrics)

    check_archive_is_safe(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "unsafe" in str(err).lower():
            raise UnsafeArchiveError(f"refusing to load {path!r}: {err}") from None
        raise


def is_path_or_url(value) -> bool:
    """Whether a `pretrained=` value names a file or URL rather than a shipped tag."""
    if isinstance(value, os.PathLike):
        return True
    text = str(value)
    return _is_url(text) or "://" in text or os.sep in text or text.endswith((".keras", ".h5"))


def holds_weights_only(source) -> bool:
    """A ``.weights.h5`` file holds weights without the architecture (built from the registry)."""
    return urllib.parse.urlparse(os.fspath(source)).path.endswith(".weights.h5")


def load_pretrained(name: str, tag=True, store: str | None = None):
    """Load a shipped checkpoint (its sha256 re-checked) as an uncompiled `keras.Model`.

    Example:
        >>> model = load_pretrained("cnn_small")            # the default tag
        >>> model = load_pretrained("cnn_small", "digits")  # a named one
    """
    return load_entry(name, tag, store)[0]


def load_entry(name: str, tag=True, store: str | None = None):
    """``(model, manifest entry)`` of a shipped checkpoint, its sha256 re-checked."""
    store = store or store_dir()
    entry = get_entry(name, tag, store)
    path = verify(os.path.join(store, entry["file"]), entry["sha256"], entry.get("size_bytes"))
    if entry.get("format", "keras") == "weights.h5":
        import keras_zoo.models  # noqa: F401  (registers the built-in families)
        from keras_zoo import registry

        model = registry.build_model(registry.builtin_spec(name), entry["input_contract"]["shape"],
                                     entry.get("num_classes"), **entry.get("overrides", {}))
        model.load_weights(path)
    else:
        model = load_keras_archive(path)
    model.pretrained_cfg = pretrained_cfg(entry)
    return model, entry


def load_weights_into(model, source: str, sha256: str, *, cache: str | None = None):
    """Load a ``.weights.h5`` file from a path or http(s) URL (sha256 checked) into a built `model`."""
    model.load_weights(fetch(source, sha256, cache=cache))
    return model


def load_weights_from(source: str, sha256: str, name: str | None = None, *, cache: str | None = None):
    """A model from a `.keras` archive at a path or http(s) URL.

    Args:
        source: path or URL of the file.
        sha256: its published sha256 (required; a mismatch raises `WeightIntegrityError`).
        name: when given, checked against the archive's model name.

    A ``.weights.h5`` file holds no architecture: build the model and use `load_weights_into`, or
    ``create_model(name, pretrained=source, sha256=...)``, which does both.
    """
    if holds_weights_only(source):
        raise ValueError(f"{source!r} holds weights only: use create_model(NAME, pretrained={source!r}, "
                         "sha256=...) to build its architecture from the registry")
    model = load_keras_archive(fetch(source, sha256, cache=cache))
    if name is not None and model.name != name:
        raise ValueError(f"{source!r} holds a model named {model.name!r}, not {name!r}")
    return model
