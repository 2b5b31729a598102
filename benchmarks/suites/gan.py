"""GAN bar: classifier-feature Frechet distance of a GAN trained at its recipe's defaults.

Trains a `cnn_small` classifier on the same data (its pooled features are the feature space),
trains the GAN with `keras_zoo.train` at its recipe's defaults, and compares the Frechet distance
to the held-out split of: the GAN's samples, an untrained generator's samples, and the real
training images (the floor). Bar: the trained distance is at least 10x lower than the untrained.
Writes ``benchmarks/results/<model>.json`` and ``benchmarks/results/<model>_<data>_samples.png``.

    python benchmarks/run.py --only gan -- [--model dcgan] [--data digits] [--seed 0]
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
from keras_zoo.data import load_splits  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan", choices=keras_zoo.list_models(family="gan"))
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default=os.path.join("runs", "bench"))
    args = parser.parse_args()
    tag = args.data.split(":")[0]

    classifier = keras_zoo.train("cnn_small", args.data, seed=args.seed, verbose=0, resume=False,
                                 run_dir=os.path.join(args.runs, f"cnn_small-{tag}-features"))
    print(f"feature classifier cnn_small: held-out accuracy {classifier.metrics['accuracy']:.4f}")

    load = os.getloadavg()
    started = time.perf_counter()
    result = keras_zoo.train(args.model, args.data, seed=args.seed, verbose=0, resume=False,
                             run_dir=os.path.join(args.runs, f"{args.model}-{tag}"))
    seconds = time.perf_counter() - started
    load = [max(a, b) for a, b in zip(load, os.getloadavg())]

    splits = load_splits(args.data, targets="none", seed=args.seed)  # the split `train` used
    report = evaluation.gan_report(result.model, classifier.model, splits.train, splits.test,
                                   seed=args.seed)
    grid = os.path.join(RESULTS, f"{args.model}_{tag}_samples.png")
    evaluation.save_image_grid(evaluation.generate_images(result.model, 64, seed=args.seed), grid)
    print(json.dumps(report, indent=2))
    print(f"trained in {seconds:.0f} s (load {load}); samples: {grid}")

    entry = {
        "model": args.model, "data": args.data,
        "metric": "frechet_distance (cnn_small features, vs held-out)", "value": report["fd_generator"],
        "fd_untrained_generator": report["fd_untrained"], "fd_real_train_floor": report["fd_floor"],
        "untrained_over_trained": report["improvement"], "bar": "untrained_over_trained >= 10",
        "passed": report["improvement"] >= 10.0, "num_samples": report["num_samples"],
        "feature_classifier_accuracy": classifier.metrics["accuracy"],
        "epochs_run": len(result.history.get("loss", [])), "samples_png": os.path.relpath(grid),
        "seconds": round(seconds, 1),
        "command": f"python benchmarks/run.py --only gan -- --model {args.model} --data {args.data}",
        # 1, 5 and 15 minute load averages (the larger of start and end) on this many cores:
        "load": [round(x, 2) for x in load], "cores": os.cpu_count(),
    }
    atomic_write_text(os.path.join(RESULTS, f"{args.model}.json"), json.dumps(entry, indent=2) + "\n")


if __name__ == "__main__":
    main()
