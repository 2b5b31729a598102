"""Building the shipped checkpoints: one `Plan` per ``name:tag`` and the command that runs it.

A plan says what a checkpoint is trained on (a data source, optionally a subset of its classes),
which recipe changes and builder arguments it uses, and whether it is the model's default tag.
`build` trains it with `keras_zoo.train`, writes the `.keras` file into the repository's
``saved_models/`` and records it in the manifest (`keras_zoo.weights` reads and verifies them).

    python -m keras_zoo.pretrain list|verify|table
    python -m keras_zoo.pretrain build NAME [--tag TAG]
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import tempfile

from keras_zoo import weights
from keras_zoo._io import atomic_path, atomic_write_text
from keras_zoo.evaluation import model_outputs
from keras_zoo.factory import get_spec
from keras_zoo.training import train

log = logging.getLogger("keras_zoo")


# --------------------------------------------------------------------------- plans


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
        ours, theirs = model_outputs(clone, probe), model_outputs(model, probe)
        same = all(np.allclose(ours[k], theirs[k], atol=1e-6) for k in theirs)
    except Exception as err:  # noqa: BLE001  (any failure means: keep the original)
        log.info("keeping the optimizer state of %s: %s", model.name, err)
        return model
    return clone if same else model


def build(name: str, tag: str | None = None, *, store: str | None = None, verbose=2) -> dict:
    """Train one shipped checkpoint with its plan, write it into the store and update the manifest.

    Returns the manifest entry. The command it records reproduces it.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_zoo.recipes import get_recipe

    plans = [p for p in PLANS.values() if p.name == name and (tag is None or p.tag == tag)]
    if not plans:
        known = sorted(f"{p.name}:{p.tag}" for p in PLANS.values())
        raise KeyError(f"no build plan for {name}{':' + tag if tag else ''}; plans: {known}")
    if tag is None and len(plans) > 1:
        plans = [p for p in plans if p.default] or plans[:1]
    plan = plans[0]
    store = store or weights.source_store_dir()
    spec = get_spec(name)

    data_options = dict(plan.data_options)
    if plan.classes is not None:
        data_options["classes"] = plan.classes
    with tempfile.TemporaryDirectory(prefix=f"build-{name}-") as run_dir:
        recipe = get_recipe(spec.recipe).replace(**plan.recipe_changes)
        result = train(spec, plan.data, recipe=recipe, seed=plan.seed, run_dir=run_dir, export=False,
                       resume=False, data_options=data_options, verbose=verbose, **plan.overrides)
    summary = result.summary
    probe = np.random.default_rng(0).uniform(size=(4, *result.info.input_shape)).astype("float32")
    model = _without_training_state(result.model, probe)

    filename = f"{name}-{plan.tag}.keras"
    path = os.path.join(store, filename)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    info = result.info
    command = f"python -m keras_zoo.pretrain build {name} --tag {plan.tag}"
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
        "class_names": list(info.class_names or []),
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
        "sha256": weights.sha256_of(path),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    manifest = weights.read_manifest(store)
    manifest["entries"] = [e for e in manifest["entries"] if (e["name"], e["tag"]) != (name, plan.tag)]
    manifest["entries"].append(entry)
    manifest["entries"].sort(key=lambda e: (e["name"], e["tag"]))
    atomic_write_text(os.path.join(store, weights.MANIFEST), json.dumps(manifest, indent=1) + "\n")
    return entry


def markdown_table(store: str | None = None) -> str:
    """The README's pretrained table: one row per shipped checkpoint, with the command that made it."""
    lines = ["| model:tag | trained on | input | held-out metric | size | reproduce |",
             "|---|---|---|---|---|---|"]
    for e in weights.entries(store=store):
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in e["metrics"].items() if k != "split")
        default = " (default)" if e.get("default") else ""
        shape = "x".join(map(str, e["input_contract"]["shape"]))
        lines.append(f"| `{e['name']}:{e['tag']}`{default} | {e['dataset']['description']} | {shape} | "
                     f"{metrics} | {e['size_bytes'] / 1024:.0f} KB | `{e['command']}` |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_zoo.pretrain",
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
        for e in weights.entries():
            metric = ", ".join(f"{k} {v}" for k, v in e["metrics"].items() if k != "split")
            print(f"{e['name']}:{e['tag']}\t{e['dataset']['source']}\t{metric}\t{e['size_bytes']} B")
        return 0
    if args.command == "table":
        print(markdown_table())
        return 0
    if args.command == "verify":
        failed = 0
        for e in weights.entries():
            try:
                weights.verify(os.path.join(weights.store_dir(), e["file"]), e["sha256"], e.get("size_bytes"))
                print(f"ok      {e['file']}")
            except (weights.WeightIntegrityError, FileNotFoundError) as err:
                failed += 1
                print(f"FAILED  {e['file']}: {err}")
        return 1 if failed else 0
    logging.basicConfig(level=logging.INFO)
    entry = build(args.name, args.tag, store=args.store)
    print(json.dumps({k: entry[k] for k in ("name", "tag", "file", "metrics", "size_bytes", "sha256")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
