"""Transfer pays? Fine-tuning a shipped checkpoint on classes it never saw, with 20 labelled images per
class, against the same architecture trained from scratch on the same images.

Targets:
  shapes       `cnn_small:shapes-2` (pretrained on 16x16 circles and squares) fine-tuned on the three
               kinds it never saw: triangles, crosses, ellipses (`shapes:classes=5,size=16`).
  shapes-2way  `cnn_small:shapes-3` (circles, squares, triangles) fine-tuned on crosses vs ellipses.
  digits       `MODEL:digits-0to4` (pretrained on the digits 0-4) fine-tuned on the digits 5-9.
  mnist        `cnn_small:mnist-0to4` (pretrained on real 28x28 MNIST digits 0-4) fine-tuned on real
               digits 5-9, through the command line exactly as a user types it (`--cli`): a folder of
               20 images per class (`train/`, from the MNIST test set's first 8,000 images) and every
               5-9 of its last 2,000 (`test/`); `keras-zoo finetune cnn_small:mnist-0to4 --data DIR`
               (its defaults: 30 head epochs, up to 30 fine-tuning epochs) against
               `keras-zoo train cnn_small --data DIR`.

Protocol (per seed): draw 20 images per target class for training; every other image of those
classes is the held-out test set. No validation data beyond those 20 per class, so both arms train
for a fixed number of epochs (no early stopping, nothing selected on held-out data). The scratch arm
is `keras_zoo.train(MODEL, ...)` with the model's own recipe; the transfer arm is
`keras_zoo.finetune(MODEL:TAG, ...)`: new head on the frozen backbone, then the whole backbone at the
same learning rate.

    python benchmarks/run.py --only finetune -- --target shapes --models cnn_small
    python benchmarks/run.py --only finetune -- --target digits --models cnn_small mlp_lecture
    python benchmarks/run.py --only finetune -- --target mnist --cli

Writes benchmarks/results/finetune_transfer_<target>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import keras_zoo  # noqa: E402
from keras_zoo.data import DatasetInfo, Splits, load_splits  # noqa: E402
from keras_zoo.recipes import get_recipe  # noqa: E402

PER_CLASS = 20
# target -> (data source, classes kept as the new task, pretrained tag, what the tag saw)
TARGETS = {
    "digits": ("digits", (5, 6, 7, 8, 9), "digits-0to4", "digits 0-4"),
    "shapes": ("shapes:classes=5,count=3000,size=16", (2, 3, 4), "shapes-2", "circles and squares"),
    "shapes-2way": ("shapes:classes=5,count=3000,size=16", (3, 4), "shapes-3", "circles, squares, triangles"),
    "mnist": ("mnist-t10k", (5, 6, 7, 8, 9), "mnist-0to4", "real 28x28 MNIST digits 0-4"),
}


def arrays(source):
    full = load_splits(source, batch_size=4096, cache=False, validation_fraction=0.0, test_fraction=0.0)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in full.train])
    return np.concatenate(xs), np.concatenate(ys), full.info.class_names


def few_shot_splits(x, y, names, classes, seed, batch_size=32):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    keep = np.isin(y, classes)
    x, y = x[keep], np.array([classes.index(int(v)) for v in y[keep]], dtype="int32")
    train_idx = np.concatenate([rng.choice(np.flatnonzero(y == c), PER_CLASS, replace=False)
                                for c in range(len(classes))])
    test_idx = np.setdiff1d(np.arange(len(y)), train_idx)
    train = tf.data.Dataset.from_tensor_slices((x[train_idx], y[train_idx]))
    test = tf.data.Dataset.from_tensor_slices((x[test_idx], y[test_idx])).batch(256)
    info = DatasetInfo(name=f"{PER_CLASS}/class of {[names[c] for c in classes]} (seed {seed})",
                       input_shape=x.shape[1:], num_classes=len(classes),
                       class_names=tuple(names[c] for c in classes),
                       num_examples={"train": len(train_idx), "validation": 0, "test": len(test_idx)},
                       targets="label")
    # No validation split: the 20 per class are all the labels there are.
    return Splits(train=train.shuffle(len(train_idx), seed=seed).batch(batch_size),
                  validation=None, test=test, info=info)


def compare(model, tag, data, classes, seeds, args):
    """Scratch vs fine-tuned accuracy of one architecture over `seeds` (one 20/class draw each)."""
    x, y, names = data
    runs = []
    for seed in seeds:
        splits = few_shot_splits(x, y, names, classes, seed)
        with tempfile.TemporaryDirectory() as tmp:
            recipe = get_recipe(keras_zoo.model_info(model)["recipe"]).replace(
                epochs=args.scratch_epochs, early_stopping_patience=None, batch_size=32)
            scratch = keras_zoo.train(model, splits, recipe=recipe, seed=seed, resume=False,
                                      run_dir=os.path.join(tmp, "scratch"), verbose=0)
            tuned = keras_zoo.finetune(f"{model}:{tag}", splits, epochs=args.head_epochs,
                                       fine_tune_epochs=args.tune_epochs, early_stopping_patience=None,
                                       learning_rate=args.learning_rate, seed=seed,
                                       run_dir=os.path.join(tmp, "finetune"), verbose=0)
        run = {"seed": seed, "scratch_accuracy": round(scratch.metrics["accuracy"], 4),
               "finetuned_accuracy": round(tuned.metrics["accuracy"], 4),
               "head_only_accuracy": round(tuned.phases[0]["test"]["accuracy"], 4),
               "test_examples": splits.info.num_examples["test"]}
        print(model, json.dumps(run), flush=True)
        runs.append(run)
    scratch = np.array([r["scratch_accuracy"] for r in runs])
    tuned = np.array([r["finetuned_accuracy"] for r in runs])
    margin = float(np.mean(tuned - scratch) * 100)
    return {
        "pretrained": f"{model}:{tag}",
        "finetuned_accuracy": round(float(tuned.mean()), 4),
        "finetuned_accuracy_std": round(float(tuned.std()), 4),
        "scratch_accuracy": round(float(scratch.mean()), 4),
        "scratch_accuracy_std": round(float(scratch.std()), 4),
        "margin_points": round(margin, 2),
        "bar_met": bool(margin >= 5.0),
        "runs": runs,
    }


def mnist_folder(root, seed):
    """train/<digit>/: 20 images of each digit 5-9 drawn from the MNIST test set's first 8,000 (the
    images cnn_small:mnist-0to4 never saw: it trained on 0-4 only); test/<digit>/: every 5-9 among
    its last 2,000. Returns the number of test images."""
    import shutil

    from keras_zoo import pretrain

    source = pretrain.mnist_t10k_folder()
    rng = np.random.default_rng(seed)
    count = 0
    for digit in range(5, 10):
        pool = sorted(os.listdir(os.path.join(source, "train", str(digit))))
        for split, names in (("train", rng.choice(pool, PER_CLASS, replace=False)),
                             ("test", sorted(os.listdir(os.path.join(source, "test", str(digit)))))):
            folder = os.path.join(root, split, str(digit))
            os.makedirs(folder, exist_ok=True)
            for name in names:
                shutil.copyfile(os.path.join(source, split, str(digit), name), os.path.join(folder, name))
            count += len(names) if split == "test" else 0
    return count


def cli_accuracy(command, run_dir):
    """Run a keras-zoo command; the held-out accuracy it wrote to run_dir/metrics.json."""
    subprocess.run(command + ["--out", run_dir, "--no-export"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": ROOT})
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return float(summary["test"]["accuracy"])


def compare_cli(seeds, tag):
    """The user's commands, verbatim but for --out and --no-export, on one folder per seed."""
    zoo = [sys.executable, "-m", "keras_zoo.cli"]
    runs = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "digits5to9")
            test_images = mnist_folder(data, seed)
            scratch = cli_accuracy(zoo + ["train", "cnn_small", "--data", data], os.path.join(tmp, "scratch"))
            tuned = cli_accuracy(zoo + ["finetune", f"cnn_small:{tag}", "--data", data], os.path.join(tmp, "finetune"))
        run = {"seed": seed, "scratch_accuracy": round(scratch, 4), "finetuned_accuracy": round(tuned, 4),
               "test_examples": test_images}
        print(json.dumps(run), flush=True)
        runs.append(run)
    scratch = np.array([r["scratch_accuracy"] for r in runs])
    tuned = np.array([r["finetuned_accuracy"] for r in runs])
    return {"cnn_small": {
        "pretrained": f"cnn_small:{tag}",
        "commands": [f"keras-zoo train cnn_small --data DIR",
                     f"keras-zoo finetune cnn_small:{tag} --data DIR"],
        "finetuned_accuracy": round(float(tuned.mean()), 4), "finetuned_accuracy_std": round(float(tuned.std()), 4),
        "scratch_accuracy": round(float(scratch.mean()), 4), "scratch_accuracy_std": round(float(scratch.std()), 4),
        "margin_points": round(float(np.mean(tuned - scratch) * 100), 2),
        "draws_won": f"{int(np.sum(tuned > scratch))} of {len(runs)}",
        # the bar is per folder: fine-tuning must beat training from scratch on every draw
        "bar_met": bool(np.all(tuned > scratch)), "runs": runs}}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", choices=sorted(TARGETS), default="shapes")
    parser.add_argument("--models", nargs="+", default=["cnn_small"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scratch-epochs", type=int, default=150)
    parser.add_argument("--head-epochs", type=int, default=60)
    parser.add_argument("--tune-epochs", type=int, default=60)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--cli", action="store_true",
                        help="run the user's keras-zoo commands on image folders (target mnist)")
    args = parser.parse_args(argv)

    source, classes, tag, seen = TARGETS[args.target]
    started = time.perf_counter()
    if args.cli:
        if args.target != "mnist":
            parser.error("--cli compares the command-line defaults on the mnist target")
        by_model = compare_cli(args.seeds, tag)
        names = [str(c) for c in range(10)]
    else:
        data = arrays(source if args.target != "mnist" else __import__("keras_zoo.pretrain").pretrain.mnist_t10k_folder())
        names = data[2]
        by_model = {model: compare(model, tag, data, classes, args.seeds, args) for model in args.models}
    seconds = time.perf_counter() - started
    result = {
        "topic": f"finetune_transfer_{args.target}",
        "data": f"{source}: pretrained on {seen} (shipped MODEL:{tag}); fine-tuned on "
                f"{[names[c] for c in classes]} with {PER_CLASS} labelled images per class and no other "
                "labels; test = every other image of those classes",
        "metric": "held-out accuracy, mean over seeds (one 20/class draw per seed)",
        "bar": ("keras-zoo finetune beats keras-zoo train from scratch on the same folder" if args.cli else
                "fine-tuned beats the same architecture trained from scratch by >= 5 points"),
        "results": by_model,
        "settings": vars(args),
        "seconds": round(seconds, 1),
        "command": "python benchmarks/run.py --only finetune -- " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "load": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    path = os.path.join(ROOT, "benchmarks", "results",
                        f"finetune_transfer_{args.target}{'_cli' if args.cli else ''}.json")
    from keras_zoo._io import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    for model, r in by_model.items():
        print(model, {k: r[k] for k in ("finetuned_accuracy", "scratch_accuracy", "margin_points", "bar_met")})


if __name__ == "__main__":
    main()
