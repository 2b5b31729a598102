"""Bar: on an MNIST-M-like target, DANN's target accuracy beats source-only training of the same
network by at least 15 points (mean of 3 seeds; Ganin et al. 2016: 52.25 % -> 76.66 %).

The target is built as Ganin & Lempitsky built MNIST-M: each digit blended with a random patch of a
colour photo, ``|patch - digit|`` per channel (`keras_zoo.data.domains.blend_with_photos`), from the
MNIST folders (``train`` 8,000 / ``test`` 2,000 digits) and CIFAR-10 photos standing in for BSDS500,
enlarged ``--photo-scale`` times (default 4) before a patch is cut so that a patch is a part of a scene,
as MNIST-M's are of the large BSDS500 photos; the target's train and test splits draw their patches from
disjoint halves of the photos. The target's folders and ``TARGET.json`` (how they were built) are reused.

Both arms train the registered `dann` network with its `dann` recipe (lambda_p = 2 / (1 + exp(-10p)) - 1
for DANN), for the same epochs, on the source's train split with the target's train split as unlabelled
images; source-only sets ``adaptation=False``. The recipe's optimizer was chosen on the target's
*validation* split (carved from its train folder, never trained on; see recipes/domain.py); the target's
test split (its digits and its photos never seen in training) only reports.

    python benchmarks/run.py --only domain_shift -- [--source DIR] [--photos DIR] [--photo-scale K] [--target DIR]
        [--seeds 0 1 2] [--epochs N] [--curve]
    python benchmarks/run.py --only domain_shift -- --combine part0.json part1.json ...   # seeds run apart
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ (this suite is in suites/)
ROOT = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "domain_shift_dann.json")
BAR_POINTS = 15.0
# Photos enlarged 4x before a 28x28 patch is cut: a patch spans 7x7 of a CIFAR-10 photo's 32x32 pixels,
# a part of a scene as MNIST-M's 28x28 patches of 481x321 BSDS500 photos are, rather than the whole
# scene (see keras_zoo.data.domains.blend_with_photos).
PHOTO_SCALE = 4.0


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma"}))
    except OSError:
        pass
    return "n/a"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "n/a"


def build_target(source: str, photos: str, target: str, photo_scale: float = 1) -> dict:
    """Write the MNIST-M-like folders (or reuse them when a build with the same inputs is there): the
    build's parameters are kept beside the folder, in ``TARGET.json``."""
    from keras_zoo.data.domains import blend_with_photos

    wanted = {"source": os.path.abspath(source), "photos": os.path.abspath(photos), "seed": 0,
              "photo_scale": photo_scale}
    record = target.rstrip(os.sep) + ".json"
    if os.path.isdir(target) and os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            made = json.load(f)
        if all(made.get(k) == v for k, v in wanted.items()):
            return {**made, "reused": target}
        raise SystemExit(f"{target} was built from {made}, not {wanted}: give another --target")
    started = time.perf_counter()
    made = {**wanted, "built": blend_with_photos(source, photos, target, seed=0, photo_scale=photo_scale,
                                                 overwrite=os.path.isdir(target))}
    made["seconds"] = round(time.perf_counter() - started, 1)
    with open(record + ".partial", "w", encoding="utf-8") as f:
        json.dump(made, f, indent=2)
    os.replace(record + ".partial", record)
    return made


def _target_curve(target: str, seed: int):
    """A callback measuring the target's validation accuracy after each epoch. The split is the one
    `keras_zoo.train` carves for the target (its loader's seed is the run's seed + 1); the last value
    equals the run's ``target_val_accuracy``, which the row records beside it as a check."""
    import keras
    import numpy as np

    from keras_zoo.data import load_splits

    validation = load_splits(target, targets="label", batch_size=256, seed=seed + 1, color_mode="rgb",
                             image_size=(28, 28)).validation

    class TargetCurve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.accuracy = []

        def on_epoch_end(self, epoch, logs=None):
            hits = total = 0
            for images, labels in validation:
                predicted = np.argmax(self.model.predict_on_batch(images), axis=-1)
                hits += int(np.sum(predicted == labels.numpy()))
                total += len(predicted)
            self.accuracy.append(hits / total)

    return TargetCurve()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/data/mnist-8k2k", help="MNIST class folders (train/, test/)")
    parser.add_argument("--photos", default="/work/data/cifar10-full/train", help="colour photos (any depth)")
    parser.add_argument("--photo-scale", type=float, default=PHOTO_SCALE,
                        help="enlarge the photos this many times before cutting a patch (see "
                             "keras_zoo.data.domains.blend_with_photos; 1: plain crops)")
    parser.add_argument("--target", help="where the MNIST-M-like folders are written (reused when built with "
                                         "the same inputs); default runs/mnist_m_like-xSCALE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the dann recipe's")
    parser.add_argument("--domain-weight", type=float, help="dann's domain_weight (the largest reversal weight); "
                                                             "default the builder's 1")
    parser.add_argument("--out", default=RESULT)
    parser.add_argument("--arms", nargs="+", default=["source_only", "dann"], choices=("source_only", "dann"))
    parser.add_argument("--curve", action="store_true",
                        help="also record the target's validation accuracy after every epoch (choosing the "
                             "training length without the target's test split)")
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="merge the rows of runs made apart")
    args = parser.parse_args()
    if args.combine:
        rows, made = [], None
        for path in args.combine:
            with open(path, encoding="utf-8") as f:
                part = json.load(f)
            rows += part["rows"]
            made = part["target"]
        return _write(rows, made, args)
    for name in ("source", "photos"):
        if not os.path.isdir(getattr(args, name)):
            print(f"--{name} {getattr(args, name)!r} is not a folder", file=sys.stderr)
            return 2

    sys.path.insert(0, ROOT)
    import keras_zoo

    args.target = args.target or os.path.join(ROOT, "runs", f"mnist_m_like-x{args.photo_scale:g}")
    made = build_target(args.source, args.photos, args.target, args.photo_scale)
    print("target:", made, flush=True)
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            adaptation = arm == "dann"
            load = _loadavg()
            started = time.perf_counter()
            curve = _target_curve(args.target, seed) if args.curve else None
            result = keras_zoo.train(
                "dann", args.source, target=args.target, epochs=args.epochs, seed=seed,
                run_dir=os.path.join(ROOT, "runs", f"bench-dann-{arm}-{seed}"), resume=False, verbose=0,
                data_options={"color_mode": "rgb"}, adaptation=adaptation, callbacks=[curve] if curve else (),
                **({"domain_weight": args.domain_weight} if args.domain_weight is not None else {}))
            row = {"arm": arm, "seed": seed, "overrides": result.summary["overrides"],
                   "target_test_accuracy": result.metrics["target_accuracy"],
                   "target_validation_accuracy": result.metrics["target_val_accuracy"],
                   "source_test_accuracy": result.metrics["accuracy"],
                   "final_domain_accuracy": (result.history.get("domain_accuracy") or [None])[-1],
                   "epochs": result.summary["epochs_run"], "seconds": result.summary["train_seconds"],
                   "loadavg_before": load}
            if curve is not None:
                row["target_validation_curve"] = [round(a, 4) for a in curve.accuracy]
                row["domain_accuracy_curve"] = [round(a, 4) for a in result.history.get("domain_accuracy", [])]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return _write(rows, made, args)


def _write(rows, made, args) -> int:
    mean = {arm: sum(r["target_test_accuracy"] for r in rows if r["arm"] == arm) /
            max(1, sum(r["arm"] == arm for r in rows)) for arm in ("source_only", "dann")}
    gap = 100.0 * (mean["dann"] - mean["source_only"])
    summary = {
        "bar": f"DANN target accuracy >= source-only + {BAR_POINTS:g} points (mean of "
               f"{len({r['seed'] for r in rows})} seeds)",
        "met": gap >= BAR_POINTS,
        "gap_points": round(gap, 2),
        "mean_target_test_accuracy": mean,
        "paper": {"source_only": 0.5225, "dann": 0.7666},
        "split": "target test (the source's test digits, 8000-9999 of MNIST t10k, on patches of a half of the "
                 "photo folder that no training image uses); choices were made on the target's validation split",
        "rows": rows,
        "target": made,
        "command": " ".join(["python benchmarks/run.py --only domain_shift --", *sys.argv[1:]]),
        "cpu_flags": _cpu_flags(),
        "loadavg_after": _loadavg(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)
    print(json.dumps({k: summary[k] for k in ("met", "gap_points", "mean_target_test_accuracy")}))
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
