"""The `fast_classifier` recipe's learning rate, chosen on validation data only.

Trains `cnn_fast` with the recipe at each candidate rate on 90 % of a training folder and scores it on
the other 10 % (a stratified validation split carved from the training folder, as `load_splits`
carves it): validation accuracy after epochs 1, 2 and 3, and of the final (early-stopped, best
val_loss) weights. The folder's held-out test photos are never read. Writes
benchmarks/results/select_fast_classifier.json.

    python benchmarks/run.py --only select_fast_classifier -- /work/data/mnist-8k2k/train [--rates 2e-3 3e-3 5e-3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ (this suite is in suites/)
RESULT = os.path.join(HERE, "results", "select_fast_classifier.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_folder", help="class folders of training images only (never the test folder)")
    parser.add_argument("--rates", type=float, nargs="+", default=[2e-3, 3e-3, 5e-3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default=RESULT)
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.train_folder)
    if not os.path.isdir(folder) or os.path.isdir(os.path.join(folder, "test")):
        raise SystemExit(f"{folder!r} must be a folder of class folders holding training images only "
                         "(its test/ split must not be read here)")

    import keras

    import keras_zoo
    from keras_zoo.data import load_splits
    from keras_zoo.recipes import get_recipe
    from keras_zoo.recipes.precision import cpu_flags

    base = get_recipe("fast_classifier")
    runs = []
    for seed in args.seeds:
        # validation_fraction 0.1 of the training folder; test_fraction 0: no photo is held out here.
        splits = load_splits(folder, batch_size=base.batch_size, validation_fraction=0.1, test_fraction=0.0,
                             seed=seed)
        info = splits.info
        for rate in args.rates:
            recipe = base.replace(learning_rate=rate)
            keras.utils.set_random_seed(seed)
            model = keras_zoo.create_model("cnn_fast", input_shape=info.input_shape, num_classes=info.num_classes)
            recipe.compile(model, steps_per_epoch=recipe.steps_per_epoch(info.num_examples["train"]))
            stop = keras.callbacks.EarlyStopping(monitor=recipe.monitor, mode=recipe.monitor_mode,
                                                 patience=recipe.early_stopping_patience, restore_best_weights=True)
            started = time.perf_counter()
            history = model.fit(splits.train, validation_data=splits.validation, epochs=recipe.epochs,
                                callbacks=[stop], verbose=0, shuffle=False).history
            seconds = time.perf_counter() - started
            final = model.evaluate(splits.validation, return_dict=True, verbose=0)
            run = {"learning_rate": rate, "seed": seed,
                   "val_accuracy_per_epoch": [round(float(a), 4) for a in history["val_accuracy"]],
                   "final_val_accuracy": round(float(final["accuracy"]), 4),
                   "final_val_loss": round(float(final["loss"]), 4),
                   "epochs_run": len(history["loss"]), "seconds": round(seconds, 1)}
            runs.append(run)
            print(json.dumps(run), flush=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {"data": folder, "num_examples": dict(info.num_examples), "split": "validation (10 % of the training folder)",
              "recipe": base.name, "runs": runs, "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
              "loadavg": load, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
