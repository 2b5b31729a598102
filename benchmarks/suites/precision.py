"""Training-step throughput of float32 vs mixed_bfloat16 (and jit_compile) on this machine.

Chooses the recipes' default `precision`: the ratio is measured against a float32 reference run in
the same process, on the same model, batch and number of steps.

    python benchmarks/run.py --only precision -- [--model cnn_small] [--shape 28,28,1] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402

import keras_zoo  # noqa: E402
from keras_zoo._io import atomic_write_text  # noqa: E402
from keras_zoo.recipes import get_recipe  # noqa: E402


def steps_per_second(model_name, shape, precision, jit, steps, batch):
    keras.config.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = keras_zoo.create_model(model_name, input_shape=shape)
    finally:
        keras.config.set_dtype_policy("float32")
    recipe = get_recipe(keras_zoo.get_spec(model_name).recipe)
    recipe.compile(model)
    model.jit_compile = jit
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, *shape)).astype("float32")
    y = rng.integers(0, 10, size=(batch,)).astype("int32")
    for _ in range(3):  # trace and warm up
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cnn_small")
    parser.add_argument("--shape", default="28,28,1")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    reference = steps_per_second(args.model, shape, "float32", False, args.steps, args.batch)
    rows = [{"precision": "float32", "jit_compile": False, "steps_per_s": reference, "ratio": 1.0}]
    for precision, jit in (("mixed_bfloat16", False), ("float32", True)):
        sps = steps_per_second(args.model, shape, precision, jit, args.steps, args.batch)
        rows.append({"precision": precision, "jit_compile": jit, "steps_per_s": sps, "ratio": sps / reference})
    for r in rows:
        print(f"{r['precision']:>15} jit={str(r['jit_compile']):5}  {r['steps_per_s']:7.1f} steps/s  x{r['ratio']:.2f}")
    result = {"topic": "precision", "model": None, "input_shape": list(shape), "batch": args.batch,
              "rows": rows, "load": os.getloadavg(),
              "command": f"python benchmarks/run.py --only precision -- --model {args.model} --shape {args.shape}"}
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", f"precision_{args.model}.json")
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
