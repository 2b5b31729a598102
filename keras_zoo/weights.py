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

This module imports Keras only inside the functions that load or train, so the registry (and the
CLI's ``list``) can ask it which models have weights without importing TensorFlow.

Rebuild an entry with ``python -m keras_zoo.weights build NAME [--tag TAG]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile

from keras_zoo._io import atomic_path, atomic_write_text

log = logging.getLogger("keras_zoo")

MANIFEST = "manifest.json"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Installed copy first (inside the package, put there by setup.py's build step), then the
# repository's own folder when running from a checkout.
_STORE_CANDIDATES = (os.path.join(_PACKAGE_DIR, "saved_models"),
                     os.path.join(os.path.dirname(_PACKAGE_DIR), "saved_models"))
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightIntegrityError(ValueError):
    """A weight file's sha256 (or length) is not the one it was published with."""


class UnsafeArchiveError(ValueError):
    """A `.keras` archive needs unsafe deserialisation (arbitrary code) to load; it is refused."""


# --------------------------------------------------------------------------- where things are


def store_dir() -> str:
    """The folder holding the shipped checkpoints and ``manifest.json``."""
    for folder in _STORE_CANDIDATES:
        if os.path.exists(os.path.join(folder, MANIFEST)):
            return folder
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


# --------------------------------------------------------------------------- integrity


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256_argument(sha256) -> str:
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}; weights from a path "
                         "or URL load only with the hash they were published with")
    return sha256.lower()


def verify(path: str, sha256: str, size: int | None = None) -> str:
    """Check a file's length (when known) and sha256; raise `WeightIntegrityError` if they differ."""
    sha256 = _check_sha256_argument(sha256)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weight file at {path!r}")
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != size:
        raise WeightIntegrityError(f"weight file {path!r} has {actual_size} bytes, expected {size} "
                                   "(truncated or replaced); it was not loaded")
    actual = sha256_of(path)
    if actual != sha256:
        raise WeightIntegrityError(f"weight file {path!r} has sha256 {actual}, expected {sha256} "
                                   "(corrupted or tampered with); it was not loaded")
    return path


# --------------------------------------------------------------------------- fetching


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


def _download(url: str, target: str, sha256: str, timeout: float) -> None:
    """Stream `url` into a temporary file beside `target`, hashing as it goes; rename on a match."""
    with atomic_path(target, suffix=".part") as tmp:
        digest, received = hashlib.sha256(), 0
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            expected_length = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
        if expected_length is not None and received != int(expected_length):
            raise WeightIntegrityError(f"download of {url} stopped after {received} of "
                                       f"{expected_length} bytes; nothing was kept")
        if digest.hexdigest() != sha256:
            raise WeightIntegrityError(f"download of {url} has sha256 {digest.hexdigest()}, expected "
                                       f"{sha256}; nothing was kept")


def fetch(source: str, sha256: str, *, cache: str | None = None, timeout: float = 60.0) -> str:
    """A verified local copy of a weight file from a path or an http(s) URL.

    A local path is checked in place. A URL is downloaded into the cache once; a cached file is
    re-hashed on every call, and one that no longer matches (truncated, edited) is discarded and
    downloaded again.

    Args:
        source: a file path, or an ``http://``/``https://`` URL.
        sha256: the file's published sha256 (required).
        cache: the cache folder (default `cache_dir()`).
        timeout: seconds to wait for the server.

    Returns:
        The path of the verified file.

    Example:
        >>> path = fetch("https://example.org/cnn_small.keras", sha256="9f2c...")
    """
    sha256 = _check_sha256_argument(sha256)
    source = os.fspath(source)
    if not _is_url(source):
        if "://" in source:
            raise ValueError(f"weights can come from a file path or an http(s) URL, got {source!r}")
        return verify(source, sha256)
    name = os.path.basename(urllib.parse.urlparse(source).path) or "weights.keras"
    # The hash is part of the cache name, so two different files with the same basename never collide.
    target = os.path.join(cache or cache_dir(), f"{sha256[:16]}-{name}")
    if os.path.exists(target):
        try:
            return verify(target, sha256)
        except WeightIntegrityError as err:
            log.warning("cached weights failed their check (%s); downloading %s again", err, source)
            os.unlink(target)
    log.info("downloading %s to %s", source, target)
    _download(source, target, sha256, timeout)
    return target


# --------------------------------------------------------------------------- loading


def _walk(config):
    if isinstance(config, dict):
        yield config
        for value in config.values():
            yield from _walk(value)
    elif isinstance(config, list):
        for value in config:
            yield from _walk(value)


def check_archive_is_safe(path: str) -> None:
    """Refuse a `.keras` archive whose config needs arbitrary code to rebuild.

    Keras's safe mode refuses such archives too; reading the config first gives a message that says
    which layer asked for it, before any object is built.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{path!r} is not a readable .keras archive ({err})") from None
    for node in _walk(config):
        if node.get("class_name") in ("Lambda", "function", "__lambda__") or "__lambda__" in node:
            layer = node.get("config", {}).get("name", node.get("class_name")) if isinstance(node.get("config"), dict) else node.get("class_name")
            raise UnsafeArchiveError(
                f"refusing to load {path!r}: it contains {node.get('class_name')!r} ({layer!r}), whose "
                "Python code would have to be deserialised to rebuild it. keras_zoo loads archives in "
                "Keras's safe mode only; rebuild the model from registered layers instead of Lambda.")


def load_keras_archive(path: str):
    """`keras.saving.load_model` in safe mode, uncompiled, with the package's custom objects known."""
    import keras

    from keras_zoo import registry

    check_archive_is_safe(path)
    registry._load_families()  # custom layers register themselves when their family is imported
    from keras_zoo.recipes import objectives  # noqa: F401  (custom losses/metrics)

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        if "safe_mode" in str(err) or "unsafe" in str(err).lower():
            raise UnsafeArchiveError(f"refusing to load {path!r}: {err}") from None
        raise


def _is_path_or_url(value) -> bool:
    if isinstance(value, os.PathLike):
        return True
    text = str(value)
    return _is_url(text) or "://" in text or os.sep in text or text.endswith((".keras", ".h5"))


def load_pretrained(name: str, tag=True, store: str | None = None):
    """Load a shipped checkpoint (its sha256 re-checked) as an uncompiled `keras.Model`.

    Example:
        >>> model = load_pretrained("cnn_small")            # the default tag
        >>> model = load_pretrained("cnn_small", "digits")  # a named one
    """
    return _load_entry(name, tag, store)[0]


def _load_entry(name: str, tag=True, store: str | None = None):
    store = store or store_dir()
    entry = get_entry(name, tag, store)
    path = verify(os.path.join(store, entry["file"]), entry["sha256"], entry.get("size_bytes"))
    if entry.get("format", "keras") == "weights.h5":
        from keras_zoo import registry

        model = registry.create_model(name, input_shape=entry["input_contract"]["shape"],
                                      num_classes=entry.get("num_classes"), **entry.get("overrides", {}))
        model.load_weights(path)
    else:
        model = load_keras_archive(path)
    return model, entry


def load_weights_from(source: str, sha256: str, name: str | None = None, *, input_shape=None,
                      num_classes=None, cache: str | None = None, **overrides):
    """A model from a `.keras` archive (or `.weights.h5` file) at a path or http(s) URL.

    Args:
        source: path or URL of the file.
        sha256: its published sha256 (required; a mismatch raises `WeightIntegrityError`).
        name: registry name; needed for ``.weights.h5`` (the architecture is rebuilt from the
            registry with `input_shape`, `num_classes` and `overrides`), checked against a
            ``.keras`` archive's model name.
    """
    path = fetch(source, sha256, cache=cache)
    if path.endswith(".weights.h5"):
        if name is None:
            raise ValueError(f"{source!r} holds weights only: pass the registry name of its architecture")
        from keras_zoo import registry

        model = registry.create_model(name, input_shape=input_shape, num_classes=num_classes, **overrides)
        model.load_weights(path)
        return model
    model = load_keras_archive(path)
    if name is not None and model.name != name:
        raise ValueError(f"{source!r} holds a model named {model.name!r}, not {name!r}")
    return model


def create_pretrained(name: str, pretrained=True, *, sha256: str | None = None, input_shape=None,
                      num_classes=None, **overrides):
    """`create_model(name, pretrained=...)`: a shipped tag, or a path/URL with its sha256."""
    from keras_zoo import registry

    spec = registry.get_spec(name)
    if isinstance(pretrained, (str, os.PathLike)) and _is_path_or_url(pretrained):
        if sha256 is None:
            raise ValueError(f"weights from {os.fspath(pretrained)!r} need sha256= (the hash they were "
                             "published with)")
        return load_weights_from(os.fspath(pretrained), sha256, name, input_shape=input_shape,
                                 num_classes=num_classes, **overrides)
    if pretrained is not True and not isinstance(pretrained, str):
        raise ValueError(f"pretrained must be True, a tag, a path or an http(s) URL, got {pretrained!r}")
    entry = get_entry(name, pretrained)
    contract = tuple(entry["input_contract"]["shape"])
    label = f"{name}:{entry['tag']}"
    if input_shape is not None and tuple(input_shape) != contract:
        raise ValueError(f"{label} was trained on inputs of shape {contract}, not {tuple(input_shape)}; "
                         f"use keras_zoo.finetune({name!r}, data) to adapt it to other inputs")
    if num_classes is not None and spec.accepts_num_classes and num_classes != entry.get("num_classes"):
        raise ValueError(f"{label} predicts {entry.get('num_classes')} classes, not {num_classes}; "
                         f"use keras_zoo.finetune({name!r}, data) to train a head for new classes")
    recorded = entry.get("overrides", {})
    changed = {k: v for k, v in overrides.items() if recorded.get(k, spec.defaults.get(k)) != v}
    if changed:
        raise ValueError(f"{label} was trained with {recorded or 'the default arguments'}; the overrides "
                         f"{changed} would change its architecture")
    model, _ = _load_entry(name, entry["tag"])
    return model


# --------------------------------------------------------------------------- building entries


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one shipped checkpoint is trained: data, recipe changes and builder arguments."""

    name: str
    tag: str
    data: str
    description: str
    classes: tuple | None = None        # keep only these labels (and renumber them 0..k-1)
    data_options: dict = dataclasses.field(default_factory=dict)
    recipe_changes: dict = dataclasses.field(default_factory=dict)
    overrides: dict = dataclasses.field(default_factory=dict)
    default: bool = False
    seed: int = 0


PLANS: dict[tuple, Plan] = {}


def add_plan(plan: Plan) -> Plan:
    key = (plan.name, plan.tag)
    if key in PLANS:
        raise ValueError(f"a plan for {plan.name}:{plan.tag} already exists")
    PLANS[key] = plan
    return plan


# Classifiers. `digits-0to4` never sees the digits 5-9, so fine-tuning it on them measures transfer.
add_plan(Plan("cnn_small", "digits-0to4", "digits", "8x8 digits 0-4 only (sklearn), 10% val / 20% test",
              classes=(0, 1, 2, 3, 4), recipe_changes={"epochs": 60, "early_stopping_patience": 12}))
add_plan(Plan("cnn_small", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test",
              recipe_changes={"epochs": 60, "early_stopping_patience": 12}, default=True))
# `shapes-3` sees circles, squares and triangles only; crosses and ellipses are left for fine-tuning.
add_plan(Plan("cnn_small", "shapes-3", "shapes:classes=5,count=3000,size=16",
              "16x16 RGB shapes: circles, squares and triangles only (3 of the 5 kinds), 10% val / 20% test",
              classes=(0, 1, 2), recipe_changes={"epochs": 40, "early_stopping_patience": 8}))
# `shapes-2` sees circles and squares only; triangles, crosses and ellipses are left for fine-tuning.
add_plan(Plan("cnn_small", "shapes-2", "shapes:classes=5,count=3000,size=16",
              "16x16 RGB shapes: circles and squares only (2 of the 5 kinds), 10% val / 20% test",
              classes=(0, 1), recipe_changes={"epochs": 40, "early_stopping_patience": 8}))
add_plan(Plan("mlp_lecture", "digits-0to4", "digits", "8x8 digits 0-4 only (sklearn), 10% val / 20% test",
              classes=(0, 1, 2, 3, 4), recipe_changes={"epochs": 80, "early_stopping_patience": 15}))
add_plan(Plan("mlp_lecture", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test",
              recipe_changes={"epochs": 80, "early_stopping_patience": 15}, default=True))

# Generative and self-supervised families on the same digits (SimCLR never reads the labels), each
# trained by its recipe as registered: the checkpoints are the models the benchmarks measure.
add_plan(Plan("vae", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test", default=True))
add_plan(Plan("dcgan", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test", default=True))
add_plan(Plan("simclr", "digits", "digits", "8x8 digits 0-9 images, labels unused (sklearn), 10% val / 20% test",
              default=True))
# ResNet, autoencoder and U-Net families. `unet:shapes-2` segments circles and squares only, so
# fine-tuning it on the other kinds' masks gives it new classes.
add_plan(Plan("resnet20", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test",
              recipe_changes={"epochs": 30}, default=True))
add_plan(Plan("conv_autoencoder", "digits", "digits", "8x8 digits 0-9 (sklearn), 10% val / 20% test",
              recipe_changes={"epochs": 60}, default=True))
add_plan(Plan("unet", "shapes-2", "shapes:classes=2,count=1500,size=16",
              "16x16 RGB shapes with masks: circles and squares only (background, circle, square), "
              "10% val / 20% test", recipe_changes={"epochs": 30}, default=True))

# Clustering, future prediction, pretext task and hard negatives (none reads the labels). The
# forecaster ships twice: digits read row by row, and the procedural `series` waves.
_DIGITS_UNLABELLED = "8x8 digits 0-9 images, labels unused (sklearn), 10% val / 20% test"
add_plan(Plan("iic", "digits", "digits", _DIGITS_UNLABELLED, default=True))
add_plan(Plan("rotation", "digits", "digits", _DIGITS_UNLABELLED, default=True))
add_plan(Plan("simclr_hard", "digits", "digits", _DIGITS_UNLABELLED, default=True))
add_plan(Plan("forecaster", "digits", "digits", "8x8 digits read as 8 rows of 8 values, top to bottom, "
              "labels unused (sklearn), 10% val / 20% test", default=True))
add_plan(Plan("forecaster", "series", "series", "procedural waves (32 steps x 1): sine, triangle, "
              "square, sawtooth, 2000 series, labels unused, 10% val / 20% test"))


def _plan_data(plan: Plan):
    """The data source of a plan: a built-in name, or arrays when only some classes are kept."""
    if plan.classes is None:
        return plan.data, None
    from keras_zoo.data import load_splits

    import numpy as np

    full = load_splits(plan.data, batch_size=4096, cache=False, seed=plan.seed, validation_fraction=0.0,
                       test_fraction=0.0, **plan.data_options)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in full.train])
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.isin(y, plan.classes)
    remap = {c: i for i, c in enumerate(plan.classes)}
    y = np.array([remap[int(v)] for v in y[keep]], dtype="int32")
    names = [full.info.class_names[c] for c in plan.classes]
    return (x[keep], y), names


def _without_training_state(model, probe):
    """A copy of `model` without optimizer state: a third of the size, the same outputs on `probe`.

    (`keras.models.clone_model` would compile the copy like the original, optimizer included.) Where
    the copy cannot be made or does not reproduce the model exactly (a model whose call samples,
    say), the trained model itself is returned and its optimizer state ships with it.
    """
    import numpy as np

    try:
        clone = model.__class__.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        clone.name = model.name
        same = all(np.allclose(np.asarray(a), np.asarray(b), atol=1e-6) for a, b in zip(
            keras_outputs(clone, probe), keras_outputs(model, probe)))
    except Exception as err:  # noqa: BLE001  (any failure means: keep the original)
        log.info("keeping the optimizer state of %s: %s", model.name, err)
        return model
    return clone if same else model


def keras_outputs(model, x) -> list:
    out = model(x, training=False)
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def build(name: str, tag: str | None = None, *, store: str | None = None, verbose=2) -> dict:
    """Train one shipped checkpoint with its plan, write it into the store and update the manifest.

    Returns the manifest entry. The command it records reproduces it.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_zoo import registry
    from keras_zoo.recipes import get_recipe
    from keras_zoo.recipes.training import train

    plans = [p for p in PLANS.values() if p.name == name and (tag is None or p.tag == tag)]
    if not plans:
        known = sorted(f"{p.name}:{p.tag}" for p in PLANS.values())
        raise KeyError(f"no build plan for {name}{':' + tag if tag else ''}; plans: {known}")
    if tag is None and len(plans) > 1:
        plans = [p for p in plans if p.default] or plans[:1]
    plan = plans[0]
    store = store or _STORE_CANDIDATES[-1]
    spec = registry.get_spec(name)

    data, class_names = _plan_data(plan)
    with tempfile.TemporaryDirectory(prefix=f"build-{name}-") as run_dir:
        recipe = get_recipe(spec.recipe).replace(**plan.recipe_changes)
        result = train(name, data, recipe=recipe, seed=plan.seed, run_dir=run_dir, export=False,
                       resume=False, data_options=plan.data_options if plan.classes is None else None,
                       verbose=verbose, **plan.overrides)
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            summary = json.load(f)
    probe = np.random.default_rng(0).uniform(size=(4, *result.info.input_shape)).astype("float32")
    model = _without_training_state(result.model, probe)

    filename = f"{name}-{plan.tag}.keras"
    path = os.path.join(store, filename)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    info = result.info
    command = f"python -m keras_zoo.weights build {name} --tag {plan.tag}"
    entry = {
        "name": name,
        "tag": plan.tag,
        "default": plan.default,
        "file": filename,
        "format": "keras",
        "optimizer_state_included": model is result.model,
        "family": spec.family,
        "task": spec.task,
        "dataset": {
            "source": plan.data,
            "description": plan.description,
            "classes": list(plan.classes) if plan.classes is not None else None,
            "split": {"seed": plan.seed, "num_examples": info.num_examples,
                      "held_out": "test"},
        },
        "metrics": {"split": "test", **{k: round(v, 5) for k, v in result.metrics.items()}},
        "recipe": summary["recipe"],
        "overrides": plan.overrides,
        "epochs_run": summary["epochs_run"],
        "train_seconds": summary["train_seconds"],
        "num_classes": info.num_classes if spec.accepts_num_classes else None,
        "class_names": list(class_names or info.class_names or []),
        "input_contract": {
            "shape": list(info.input_shape),
            "dtype": "float32",
            "value_range": list(getattr(info, "value_range", None) or (0.0, 1.0)),
            "layout": "channels_last",
            "normalization_inside_model": False,
            "note": "inputs are pixel values divided by 255; the uint8 serving export does this itself",
        },
        "parameters": int(model.count_params()),
        "size_bytes": os.path.getsize(path),
        "sha256": sha256_of(path),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    manifest = read_manifest(store)
    manifest["entries"] = [e for e in manifest["entries"] if (e["name"], e["tag"]) != (name, plan.tag)]
    manifest["entries"].append(entry)
    manifest["entries"].sort(key=lambda e: (e["name"], e["tag"]))
    atomic_write_text(os.path.join(store, MANIFEST), json.dumps(manifest, indent=1) + "\n")
    return entry


def markdown_table(store: str | None = None) -> str:
    """The README's pretrained table: one row per shipped checkpoint, with the command that made it."""
    lines = ["| model:tag | trained on | input | held-out metric | size | reproduce |",
             "|---|---|---|---|---|---|"]
    for e in entries(store=store):
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in e["metrics"].items() if k != "split")
        default = " (default)" if e.get("default") else ""
        shape = "x".join(map(str, e["input_contract"]["shape"]))
        lines.append(f"| `{e['name']}:{e['tag']}`{default} | {e['dataset']['description']} | {shape} | "
                     f"{metrics} | {e['size_bytes'] / 1024:.0f} KB | `{e['command']}` |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_zoo.weights",
                                     description="Inspect, verify or rebuild the shipped checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="shipped checkpoints and their held-out metrics")
    sub.add_parser("verify", help="re-hash every shipped checkpoint")
    sub.add_parser("table", help="the README's markdown table of shipped checkpoints")
    p = sub.add_parser("build", help="train a checkpoint with its plan and add it to saved_models/")
    p.add_argument("name")
    p.add_argument("--tag")
    p.add_argument("--store", help="target folder (default: the repository's saved_models/)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for e in entries():
            metric = ", ".join(f"{k} {v}" for k, v in e["metrics"].items() if k != "split")
            print(f"{e['name']}:{e['tag']}\t{e['dataset']['source']}\t{metric}\t{e['size_bytes']} B")
        return 0
    if args.command == "table":
        print(markdown_table())
        return 0
    if args.command == "verify":
        failed = 0
        for e in entries():
            try:
                verify(os.path.join(store_dir(), e["file"]), e["sha256"], e.get("size_bytes"))
                print(f"ok      {e['file']}")
            except (WeightIntegrityError, FileNotFoundError) as err:
                failed += 1
                print(f"FAILED  {e['file']}: {err}")
        return 1 if failed else 0
    logging.basicConfig(level=logging.INFO)
    entry = build(args.name, args.tag, store=args.store)
    print(json.dumps({k: entry[k] for k in ("name", "tag", "file", "metrics", "size_bytes", "sha256")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
