"""SimCLR bar: linear probes of the frozen encoder vs a random-init encoder vs raw pixels.

Pre-trains `simclr` with `keras_zoo.train` at its recipe's defaults (no labels), then fits the
same logistic-regression probe on: the frozen SimCLR encoder's pooled features, the features of
a randomly initialised encoder of the same architecture, and raw pixels; with N labelled images
per class (averaged over 10 draws) and with all training labels. Also reports alignment and
uniformity (Wang & Isola 2020) on the held-out split. Bar: with 10 labels per class the SimCLR
probe beats both others by >= 5 points. Writes ``benchmarks/results/simclr.json``.

    python benchmarks/run.py --only simclr -- [--data digits] [--encoder cnn_small] [--set flip=true ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras_zoo  # noqa: E402
from keras_zoo import evaluation  # noqa: E402
from keras_zoo._io import atomic_write_text  # noqa: E402
from keras_zoo._validate import assignments  # noqa: E402  (--set KEY=VALUE, as the CLI parses it)
from keras_zoo.data import load_splits  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--encoder", default="cnn_small")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (exploration only)")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="simclr builder argument, e.g. --set flip=true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default=os.path.join("runs", "bench"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "simclr.json"))
    args = parser.parse_args()
    overrides = assignments(args.set)
    tag = args.data.split(":")[0]

    load = os.getloadavg()
    started = time.perf_counter()
    result = keras_zoo.train("simclr", args.data, seed=args.seed, verbose=0, resume=False,
                             epochs=args.epochs, encoder=args.encoder,
                             run_dir=os.path.join(args.runs, f"simclr-{tag}"), **overrides)
    seconds = time.perf_counter() - started
    load = [max(a, b) for a, b in zip(load, os.getloadavg())]

    labelled = load_splits(args.data, targets="label", seed=args.seed)  # the split `train` used
    report = evaluation.simclr_report(result.model, labelled.train, labelled.test,
                                      labels_per_class=(args.labels_per_class, None), seed=args.seed)
    budget = f"{args.labels_per_class}_per_class"
    probe = report["probe"][budget]
    margin = min(probe["simclr"]["accuracy"] - probe["random_init"]["accuracy"],
                 probe["simclr"]["accuracy"] - probe["pixels"]["accuracy"])
    print(json.dumps(report, indent=2))
    print(f"trained in {seconds:.0f} s (load {load}); margin at {budget}: {100 * margin:.1f} points")

    command = " ".join(["python benchmarks/run.py --only simclr --", f"--data {args.data}", f"--encoder {args.encoder}"]
                       + [f"--set {s}" for s in args.set] + ([f"--epochs {args.epochs}"] if args.epochs else []))
    entry = {
        "model": "simclr", "data": args.data, "encoder": args.encoder, "overrides": overrides,
        "metric": f"linear-probe accuracy, {args.labels_per_class} labels/class (frozen encoder)",
        "value": probe["simclr"]["accuracy"],
        "margin_points": 100 * margin, "bar": "simclr beats random_init and pixels by >= 5 points",
        "passed": margin >= 0.05, "probe": report["probe"], "geometry": report["geometry"],
        "epochs_run": len(result.history.get("loss", [])), "seconds": round(seconds, 1),
        "command": command,
        # 1, 5 and 15 minute load averages (the larger of start and end) on this many cores:
        "load": [round(x, 2) for x in load], "cores": os.cpu_count(),
    }
    atomic_write_text(args.out, json.dumps(entry, indent=2) + "\n")


if __name__ == "__main__":
    main()
