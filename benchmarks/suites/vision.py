"""Bars of the vision families, each trained with `keras_zoo.train(name, data)` at the registered defaults.

    python benchmarks/run.py --only vision -- resnet20            # shapes 32x32 classification, >= 97% in 5 min
    python benchmarks/run.py --only vision -- unet                # shapes segmentation, mean IoU >= 0.90 in 5 min
    python benchmarks/run.py --only vision -- conv_autoencoder    # digits, held-out PSNR >= 22 dB
    python benchmarks/run.py --only vision -- denoising_autoencoder [--corruption salt_pepper:0.1]
                                                          # PSNR gain over the noisy inputs >= 6 dB
    python benchmarks/run.py --only vision -- masked_autoencoder  # imputation PSNR (no bar; reported)

Each run writes benchmarks/results/<name>[_<corruption>].json with the figure, the wall time of the
whole `train` call (data, tracing, fit, test evaluation, saving) and of `fit` alone, the process's
CPU time, and the machine load (`os.getloadavg()`, as `uptime` prints it) after and before the run:
the CPU is shared, so timings are inflated by the load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402

import keras_zoo  # noqa: E402
from keras_zoo._io import atomic_write_text  # noqa: E402

# model -> (data, metric, bar, description of the bar)
BARS = {
    "resnet20": ("shapes", "accuracy", 0.97, "held-out accuracy >= 0.97 within 300 s"),
    "unet": ("shapes", "mean_iou", 0.90, "held-out mean IoU >= 0.90 within 300 s"),
    "conv_autoencoder": ("digits", "psnr", 22.0, "held-out PSNR >= 22 dB"),
    "denoising_autoencoder": ("digits", "psnr_gain", 6.0, "held-out PSNR gain over the noisy inputs >= 6 dB"),
    "masked_autoencoder": ("digits", "psnr_gain", None, "reported only"),
}
TIME_LIMIT_S = {"resnet20": 300.0, "unet": 300.0}


def _load():
    return [round(v, 2) for v in os.getloadavg()]


def input_psnr(splits) -> float:
    """Mean per-image PSNR of the corrupted test inputs against their clean targets (the do-nothing baseline)."""
    import tensorflow as tf

    values = [tf.image.psnr(batch[0], batch[1], max_val=1.0).numpy() for batch in splits.test]
    values = np.concatenate(values)
    return float(np.mean(np.where(np.isfinite(values), values, 100.0)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=sorted(BARS))
    parser.add_argument("--corruption", default=None, help="override the recipe's corruption spec")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data, metric, bar, bar_text = BARS[args.model]
    data_options = {"corruption": args.corruption} if args.corruption else None

    load_before = _load()
    fit_time = {}

    class FitTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fit_time["start"] = time.perf_counter()

        def on_train_end(self, logs=None):
            fit_time["end"] = time.perf_counter()

    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as run_dir:
        result = keras_zoo.train(args.model, data, run_dir=run_dir, seed=args.seed, resume=False,
                                 callbacks=[FitTimer()], data_options=data_options, verbose=2)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    metrics = dict(result.metrics)
    value = metrics.get(metric)
    extra = {}
    if metric == "psnr_gain":
        from keras_zoo.data.corruptions import make_corruption
        from keras_zoo.recipes import get_recipe

        spec = args.corruption or get_recipe(args.model).corruption
        splits = keras_zoo.load_splits(data, targets="image", batch_size=256, seed=args.seed,
                                       corruption=make_corruption(spec))
        noisy = input_psnr(splits)
        value = metrics["psnr"] - noisy
        extra = {"corruption": spec, "input_psnr": noisy, "output_psnr": metrics["psnr"]}
    limit = TIME_LIMIT_S.get(args.model)
    passed = bar is None or (value >= bar and (limit is None or seconds <= limit))
    command = f"python benchmarks/run.py --only vision -- {args.model}" + (
        f" --corruption {args.corruption}" if args.corruption else "")
    record = {
        "model": args.model,
        "data": data,
        "metric": metric,
        "value": value,
        "bar": bar_text,
        "passed": passed,
        "seconds": round(seconds, 1),
        "fit_seconds": round(fit_time["end"] - fit_time["start"], 1),
        # CPU time of all the process's threads: on an idle 2-core machine the wall time is about
        # half of this; under load the wall time above is what this machine gave.
        "cpu_seconds": round(cpu_seconds, 1),
        "epochs_run": len(result.history.get("loss", [])),
        "validation_curve": {k: [round(v, 4) for v in vals] for k, vals in result.history.items()
                             if k.startswith("val_")},
        "test_metrics": metrics,
        **extra,
        "command": command,
        # 1/5/15-minute load averages (as `uptime` prints them) at the end of the run, and before it.
        "load": _load(),
        "load_before": load_before,
    }
    print(json.dumps(record, indent=2))
    suffix = "_" + re.sub(r"[^A-Za-z0-9.]+", "-", args.corruption) if args.corruption else ""
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", f"{args.model}{suffix}.json")
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
