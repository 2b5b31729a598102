"""Bar: on `digits`, a 6-trial random search over `cnn_small` finds a configuration at least as good
as the default on the held-out split, within 10 minutes on this CPU.

Writes benchmarks/results/tune_cnn_small_digits.json. The file has a "topic" and no "model"/"metric"
keys, so the README model table (which reads files with those keys) keeps cnn_small's own row.

    python benchmarks/run.py --only tune
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unavailable"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn_small")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "tune_cnn_small_digits.json"))
    args = parser.parse_args()

    import keras_zoo

    load_before = uptime()
    directory = tempfile.mkdtemp(prefix="bench_tune_")
    started = time.perf_counter()
    result = keras_zoo.tune(args.model, args.data, tuner="random", max_trials=args.trials,
                            epochs=args.epochs, seed=args.seed, directory=directory, verbose=1)
    seconds = time.perf_counter() - started
    best_t, default_t = result.held_out
    better = best_t >= default_t if result.direction == "max" else best_t <= default_t
    acc_best, acc_default = result.best_test.get("accuracy"), result.default_test.get("accuracy")
    record = {
        "topic": f"tune {args.model} on {args.data}",
        "data": args.data,
        "tuner": "random",
        "trials": len(result.trials),
        "epochs_per_trial": args.epochs,
        "objective": result.objective,
        "direction": result.direction,
        "held_out_metric": f"test {result.held_out_metric}",
        "default_score": result.default_score,
        "best_score": result.best_score,
        "default_held_out": default_t,
        "best_held_out": best_t,
        "best_at_least_default_on_held_out": bool(better),
        "default_test": result.default_test,
        "best_test": result.best_test,
        "best_test_accuracy_at_least_default": (None if acc_best is None or acc_default is None
                                                else bool(acc_best >= acc_default)),
        "best_trial": result.best_trial_id,
        "best_hyperparameters": result.best_hyperparameters,
        "seconds": round(seconds, 1),
        "within_budget": seconds <= args.budget_s,
        "command": (f"python benchmarks/run.py --only tune -- --trials {args.trials} "
                    f"--epochs {args.epochs} --seed {args.seed}"),
        "load": f"before: {load_before} | after: {uptime()}",
        "table": result.table(),
    }
    from keras_zoo._io import atomic_write_text

    atomic_write_text(args.out, json.dumps(record, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "table"}, indent=2, default=str))
    return 0 if better and seconds <= args.budget_s else 1


if __name__ == "__main__":
    sys.exit(main())
