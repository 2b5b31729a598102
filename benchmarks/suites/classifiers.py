"""Held-out accuracy of the mlp and cnn families at their registered defaults (the model table's figures).

Each model is trained exactly as `keras-zoo train NAME --data DATA` does (registered recipe, seed 0)
and its test-split accuracy and training time are written to `benchmarks/results/NAME.json`.

    python benchmarks/run.py --only classifiers -- [NAME ...]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras_zoo  # noqa: E402
from keras_zoo._io import atomic_write_text  # noqa: E402

# model -> reference data set
REFERENCE = {
    "mlp_lecture": "digits",
    "mlp_wide": "digits",
    "mlp_deep": "digits",
    "cnn_lecture": "digits",
    "cnn_small": "digits",
    "cnn_medium": "shapes",
}


def measure(name: str, data: str) -> dict:
    run_dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
    try:
        result = keras_zoo.train(name, data, run_dir=run_dir, verbose=0)
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            summary = json.load(f)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"model": name, "data": data, "metric": "accuracy", "value": round(result.metrics["accuracy"], 4),
            "split": "test", "epochs": summary["epochs_run"], "seconds": summary["train_seconds"],
            "load": [round(x, 2) for x in os.getloadavg()],
            "command": f"keras-zoo train {name} --data {data}"}


def main(names):
    out_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
    for name in names or REFERENCE:
        row = measure(name, REFERENCE[name])
        print(json.dumps(row), flush=True)
        atomic_write_text(os.path.join(out_dir, f"{name}.json"), json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
