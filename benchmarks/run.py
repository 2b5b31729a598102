"""The benchmarks' one entry point: the performance suite P1-P5, and every single measurement.

    python benchmarks/run.py                 # P1-P5, 3 rounds each
    python benchmarks/run.py --quick         # fewer rounds/steps: a few minutes
    python benchmarks/run.py --only P1,P5    # some of them
    python benchmarks/run.py --list          # P1-P5 and the suites below
    python benchmarks/run.py --only vision -- resnet20    # one suite, its own options after --

The suites in `benchmarks/suites/` each measure one figure of the docs (a model's held-out figure,
a transfer comparison, a fixed cost...) and write ``benchmarks/results/<name>.json``; run.py runs
one in a process of its own (``--only NAME -- ARGS``), the way the docs name it beside its figure.

Every figure is a ratio against a reference run in the same script, the two interleaved (A B, B A,
...) over >= 3 rounds (1 with --quick), reported as min and median (bars are judged on the median); the machine's CPU model and
flags and its load average are recorded beside. Results go to ``benchmarks/results/perf_<P>.json``
and the table of docs/performance.md between ``<!-- perf:begin -->`` and ``<!-- perf:end -->`` is
rewritten from all of them.

- P1 time-to-accuracy: ``keras-zoo train cnn_fast --data FOLDER`` (no other flag) against
  `benchmarks/handwritten.py` on the 8,000/2,000 split of the real MNIST test digits
  (``KERAS_ZOO_MNIST_T10K`` or ../shared/data/mnist-t10k; skipped when absent): wall time from
  launch to the end of the first epoch at >= 98 % test accuracy (`probe.py` measures each epoch,
  its own time excluded), and the final test accuracy of each. ``--p1-data FOLDER`` runs the same
  comparison on another train/test folder (``perf_P1-data-<folder name>.json``, outside the table),
  the target then being the accuracy the hand-written script finishes at.
- P2 training/inference img/s of each family's default model through its recipe against the same
  model compiled plainly (the recipe's optimizer kind at Keras's defaults, the loss, accuracy); `resnet50` at 128x128 against
  `keras.applications.ResNet50(weights=None)`; achieved GFLOP/s against a matmul peak (fp32, bf16).
- P3 serving latency: the export's ``serving_default`` vs `model.predict` vs `model(x)`.
- P4 input pipeline img/s against the train step's consumption (28x28 PNGs, 224x224 JPEGs), and
  the peak memory of caching a folder.
- P5 fixed cost: ``keras-zoo list``, ``--help``, ``import keras_zoo`` against ``python -c pass``;
  a 1-epoch ``train`` against the hand-written 1-epoch script.
- Q quantised LiteRT/ONNX exports: size, held-out accuracy, latency against the SavedModel
  (`benchmarks/quantize.py`; its table is in docs/quantization.md, not the README's).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
# The page whose table between the markers is rewritten from perf_P*.json.
README = os.path.join(ROOT, "docs", "performance.md")
BEGIN, END = "<!-- perf:begin -->", "<!-- perf:end -->"
BENCHMARKS = ("P1", "P2", "P3", "P4", "P5", "Q")
SUITES_DIR = os.path.join(HERE, "suites")


def suites() -> dict:
    """{name: path} of the single-measurement suites in benchmarks/suites/."""
    return {f[:-3]: os.path.join(SUITES_DIR, f) for f in sorted(os.listdir(SUITES_DIR))
            if f.endswith(".py") and not f.startswith("_")}


def suite_summary(path: str) -> str:
    """The first line of a suite's docstring (read from the file, not imported)."""
    import ast

    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.splitlines()[0] if doc else ""


def run_suite(name: str, argv: list) -> int:
    """Run one suite in a process of its own with its own options; its exit status."""
    return subprocess.run([sys.executable, suites()[name], *argv], env=ENV).returncode
# The commands run as a user's Python runs them: PYTHONDONTWRITEBYTECODE (set on some CI machines)
# would make every start compile the package's sources again, a cost no installed package pays.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "TF_CPP_MIN_LOG_LEVEL": "2"}
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


# --------------------------------------------------------------------------- machine and statistics


def machine() -> dict:
    """CPU model, the SIMD/matrix flags that decide fp32 vs bf16 speed, core count, load average."""
    model, flags = platform.processor(), set()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", text).group(1).strip()
        flags = set(re.search(r"Flags:\s*(.+)", text).group(1).split())
    except (OSError, subprocess.CalledProcessError, AttributeError):
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
    return {"cpu": model, "flags": [f for f in wanted if f in flags], "cpus": os.cpu_count(),
            "load": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def summary(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "n": 0}
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4), "n": len(values)}


def interleave(rounds: int, runs: dict) -> dict:
    """Run each callable of `runs` once per round, the order reversed every other round."""
    names, out = list(runs), {name: [] for name in runs}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            out[name].append(runs[name]())
    return out


def run(cmd, cwd=None) -> subprocess.CompletedProcess:
    """Run a command with this checkout on PYTHONPATH; a failure raises with its stderr's tail."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def wall(cmd, cwd=None) -> float:
    start = time.perf_counter()
    run(cmd, cwd=cwd)
    return time.perf_counter() - start


def save(name: str, result: dict) -> dict:
    from keras_zoo._io import atomic_write_text

    result = {"benchmark": name, **result, "machine_after": machine()}
    atomic_write_text(os.path.join(RESULTS, f"perf_{name}.json"), json.dumps(result, indent=2) + "\n")
    return result


# --------------------------------------------------------------------------- data


def mnist_folder(tmp: str) -> str | None:
    """The 8,000/2,000 PNG folders of the real MNIST test digits, or None when the IDX files are absent."""
    source = os.environ.get("KERAS_ZOO_MNIST_T10K", os.path.join(ROOT, "..", "shared", "data", "mnist-t10k"))
    script = os.path.join(source, "make_folders.py")
    if not os.path.exists(script):
        return None
    out = os.path.join(tmp, "mnist-t10k")
    if not os.path.isdir(out):
        subprocess.run([sys.executable, script, out], check=True, capture_output=True)
    return out


def digits_folder(tmp: str) -> str:
    """sklearn's 8x8 digits upsampled to 28x28 PNGs, train/test class folders (always available)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    out = os.path.join(tmp, "digits28")
    if os.path.isdir(out):
        return out
    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        folder = os.path.join(out, "test" if i % 5 == 0 else "train", str(label))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray((img / 16.0 * 255).astype(np.uint8), mode="L").resize(
            (28, 28), Image.BILINEAR).save(os.path.join(folder, f"{i}.png"))
    return out


def photo_folder(tmp: str, count: int = 400, size: int = 224) -> str:
    """`count` 224x224 RGB JPEGs in 4 class folders: filled shapes on noisy backgrounds."""
    import numpy as np
    from PIL import Image, ImageDraw

    out = os.path.join(tmp, f"photos{size}")
    if os.path.isdir(out):
        return out
    rng = np.random.default_rng(0)
    for i in range(count):
        label = i % 4
        folder = os.path.join(out, f"class{label}")
        os.makedirs(folder, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        x0, y0 = rng.integers(0, size // 2, 2)
        box = (int(x0), int(y0), int(x0 + size // 3), int(y0 + size // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        [draw.ellipse, draw.rectangle, draw.pieslice, draw.chord][label](
            box, fill=colour, **({"start": 0, "end": 270} if label >= 2 else {}))
        image.save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return out


# --------------------------------------------------------------------------- P1 time-to-accuracy


def _read_probe(path: str, launched: float, target: float | None) -> dict:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    spent_before, seconds = 0.0, []
    for row in rows:
        seconds.append(round(row["time"] - launched - spent_before, 2))
        spent_before = row["probe_seconds"]
    out = {"accuracy_by_epoch": [round(r["accuracy"], 4) for r in rows], "seconds_by_epoch": seconds}
    return {"reached": first_reach(out, target), **out} if target is not None else out


def first_reach(run_: dict, target: float) -> dict | None:
    """The first epoch (and its seconds from launch) whose test accuracy is >= target, or None."""
    for epoch, (accuracy, seconds) in enumerate(zip(run_["accuracy_by_epoch"], run_["seconds_by_epoch"]), 1):
        if accuracy >= target:
            return {"epoch": epoch, "seconds": seconds}
    return None


def check_p1_folder(folder: str) -> str:
    """`folder` when it holds train/<class>/ and test/<class>/ folders; a one-line error otherwise."""
    for split in ("train", "test"):
        path = os.path.join(folder, split)
        classes = [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))] if os.path.isdir(path) else []
        if len(classes) < 2:
            raise ValueError(f"--p1-data {folder!r}: expected {split}/<class>/ image folders (at least 2 "
                             f"classes) inside it, found {len(classes)} under {path!r}")
    return folder


def p1_summary(runs: dict, target: float | None) -> dict:
    """Ratios of the zoo's time to a test accuracy over the hand-written script's, round by round.

    With `target` None (another data set, whose attainable accuracy is unknown) each round's target
    is the accuracy the hand-written script finished at: the zoo is ahead when it gets there sooner
    and finishes at least as high."""
    ratios, targets = [], []
    for z, h in zip(runs["cnn_fast"], runs["handwritten"]):
        goal = target if target is not None else h["final_accuracy"]
        zr, hr = first_reach(z, goal), first_reach(h, goal)
        targets.append(goal)
        ratios.append(zr["seconds"] / hr["seconds"] if zr and hr else None)
    zoo_final = [z["final_accuracy"] for z in runs["cnn_fast"]]
    hand_final = [h["final_accuracy"] for h in runs["handwritten"]]
    return {"targets": targets, "time_to_target_ratio": summary(ratios),
            "zoo_final_accuracy": summary(zoo_final), "hand_final_accuracy": summary(hand_final),
            "all_reached": None not in ratios}


def _zoo_round(model: str, folder: str, tmp: str, name: str, target) -> dict:
    """One whole `keras-zoo train MODEL --data FOLDER` process under probe.py (held-out accuracy
    after every epoch, its own time excluded): the probe's curve, wall time, final accuracy."""
    probe, out = os.path.join(tmp, f"{name}.jsonl"), os.path.join(tmp, name.replace("zoo", "zoo-run"))
    shutil.rmtree(out, ignore_errors=True)
    launched = time.time()
    run([sys.executable, os.path.join(HERE, "probe.py"), probe, os.path.join(folder, "test"), "--",
         "train", model, "--data", folder, "--out", out], cwd=tmp)
    total = time.time() - launched
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    return {**_read_probe(probe, launched, target), "total_seconds": round(total, 2),
            "final_accuracy": metrics["test"]["accuracy"], "epochs_run": metrics["epochs_run"],
            "precision": metrics.get("precision")}


def p1(args, tmp: str) -> dict:
    folder = args.p1_data or mnist_folder(tmp)
    if folder is None:
        return {"skipped": "the mnist-t10k IDX files are not here (set KERAS_ZOO_MNIST_T10K)"}
    # on mnist-t10k the bar: 98 %; on another folder the hand-written script's own final accuracy
    target = None if args.p1_data else 0.98
    rounds = []

    def zoo():
        result = _zoo_round("cnn_fast", folder, tmp, f"zoo{len(rounds)}", target)
        result.pop("precision")
        rounds.append(1)
        return result

    def hand():
        probe = os.path.join(tmp, f"hand{len(rounds)}.jsonl")
        launched = time.time()
        out = run([sys.executable, os.path.join(HERE, "handwritten.py"), folder, "--probe", probe,
                   "--out", os.path.join(tmp, "hand.keras")], cwd=tmp)
        total = time.time() - launched
        final = float(re.search(r"accuracy ([0-9.]+)", out.stdout).group(1))
        rounds.append(1)
        return {**_read_probe(probe, launched, target), "total_seconds": round(total, 2),
                "final_accuracy": final}

    runs = interleave(args.rounds, {"handwritten": hand, "cnn_fast": zoo})
    s = p1_summary(runs, target)
    ratio = s["time_to_target_ratio"]["median"]
    zoo_final, hand_final = s["zoo_final_accuracy"]["median"], s["hand_final_accuracy"]["median"]
    common = {"runs": runs, **s}
    if args.p1_data:
        return {
            "command": f"keras-zoo train cnn_fast --data {folder}  vs  python benchmarks/handwritten.py {folder}",
            "data": os.path.abspath(folder), "target_accuracy": "the hand-written script's final test accuracy",
            **common,
            "bars": {"time_to_target_ratio_max": 1.0, "zoo_final_at_least_hand_final": True},
            # ahead: the zoo reaches the hand-written script's accuracy sooner and finishes at least as high
            "met": bool(s["all_reached"] and ratio < 1.0 and zoo_final >= hand_final),
        }
    return {
        "command": "keras-zoo train cnn_fast --data mnist-t10k  vs  python benchmarks/handwritten.py mnist-t10k",
        "target_accuracy": target, **common,
        "bars": {"time_to_98_ratio_max": 0.5, "final_accuracy_min": 0.988},
        # every bar is judged on the median over rounds
        "met": bool(s["all_reached"] and ratio <= 0.5 and zoo_final >= 0.988),
    }


# --------------------------------------------------------------------------- P2 training/inference speed

# One supervised model per family (the families whose recipes compile a loss Keras can apply
# plainly; GANs, VAEs, SimCLR, IIC and rotation train through their own `train_step`).
P2_MODELS = (("cnn_fast", None), ("mlp_lecture", None), ("resnet20", None),
             ("conv_autoencoder", None), ("unet", (64, 64, 3)), ("mobilenet_v3_small", (96, 96, 3)))


def forward_flops(model) -> float:
    """Multiply-adds x 2 of the convolution and dense layers of one example's forward pass."""
    import keras

    total = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
            h, w = layer.output.shape[1:3]
            k = layer.kernel.shape
            total += 2.0 * h * w * k[0] * k[1] * k[2] * k[3]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            h, w = layer.input.shape[1:3]
            k = layer.kernel.shape
            total += 2.0 * h * w * k[0] * k[1] * k[2] * k[3]
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            h, w = layer.output.shape[1:3]
            k = layer.kernel.shape
            total += 2.0 * h * w * k[0] * k[1] * k[2] * k[3]
        elif isinstance(layer, keras.layers.Dense):
            units = 1
            for d in layer.output.shape[1:-1]:
                units *= d or 1
            total += 2.0 * units * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def matmul_peak(dtype: str, n: int = 2048, repeats: int = 8) -> float:
    """GFLOP/s of an n x n matmul chain in `dtype` on this machine, now."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, a) * 0.001
        return x

    chain(a).numpy()
    best = float("inf")
    for _ in range(3):  # the best of three: a peak, not a typical figure
        start = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 * repeats / best / 1e9


MIN_SECONDS = [2.0]  # each timing runs at least this long (0.5 s with --quick)
PAIR_SECONDS = [0.25]  # each call of a paired comparison runs at least this long (0.1 s with --quick)
PAIR_CALLS = [33]  # calls per round of a paired comparison, alternating sides (9 with --quick)


def _seconds(run_for, units: int) -> float:
    """Wall seconds of one `run_for(units)` call."""
    start = time.perf_counter()
    run_for(units)
    return time.perf_counter() - start


def _units_for(run_for, units: int, seconds: float | None = None) -> int:
    """The number of units (steps or passes) at which one `run_for` call takes >= `seconds`
    (MIN_SECONDS by default)."""
    seconds = MIN_SECONDS[0] if seconds is None else seconds
    while _seconds(run_for, units) < seconds:
        units *= 2
    return units


def _paired_ratios(run_a, run_b, per_unit: int, rounds: int) -> dict:
    """A against B on the same two built and traced models. Each round is a chain of PAIR_CALLS
    short calls alternating A B A B ... (B A B A ... in odd rounds); every call inside the chain is
    compared with the mean of its two neighbours, which ran on the other side just before and just
    after it, and the round's ratio (A's rate over B's) is the median of those comparisons. Returns
    each side's rate per round (units over its median call time) and the ratios.

    Why this design: single calls of the small models vary by +-20 % here, even of one model against
    itself (the tiny `mlp_lecture` predict is Python- and dispatch-bound at any batch size). The
    fastest of two 2 s runs per side scattered identical graphs between 0.90x and 1.21x; a call
    bracketed by the other side's calls cancels slow drifts, and the median of ~30 such brackets
    held one model against itself within 0.95-1.03 per round. (An earlier version rebuilt both
    models every round and took rates from n against 2n units: 0.65x-1.3x for identical graphs.)"""
    import gc
    import statistics

    # From one unit up: a call of the large models is then one or two steps (resnet50 at 128x128:
    # about 1 s), not the 8 a starting count of 8 gave (P2 took 48 min with it, 14 before the chain).
    units = max(_units_for(run_a, 1, PAIR_SECONDS[0]), _units_for(run_b, 1, PAIR_SECONDS[0]))
    rates = {"a": [], "b": []}
    ratios = []
    for r in range(rounds):
        sides = ["ab"[(i + r) % 2] for i in range(PAIR_CALLS[0])]
        times = []
        for side in sides:
            gc.collect()
            gc.disable()  # a collection inside one call but not its neighbours' is noise, not speed
            try:
                times.append(_seconds(run_a if side == "a" else run_b, units))
            finally:
                gc.enable()
        brackets = []
        for i in range(1, len(sides) - 1):
            neighbours = (times[i - 1] + times[i + 1]) / 2
            brackets.append(times[i] / neighbours if sides[i] == "b" else neighbours / times[i])
        ratios.append(statistics.median(brackets))
        for side in "ab":
            rates[side].append(units * per_unit / statistics.median(
                [t for s, t in zip(sides, times) if s == side]))
    return {"a": rates["a"], "b": rates["b"], "ratio": ratios}


def _no_autotune():
    """The tf.data options the package's own pipelines carry (autotuner off; see
    `keras_zoo.data.pipeline._pipeline_options`): with the autotuner on, whole `fit`/`predict` calls
    ran on one of the two cores about half the time, and the side that drew more of those lost by up
    to 2x."""
    from keras_zoo.data.pipeline import _pipeline_options

    return _pipeline_options()


def _trainer(model, x, y, batch):
    """`run_for(n)`: n training steps of `model.fit` on `x, y` (warmed up: traced and built)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).repeat().prefetch(2)
    ds = ds.with_options(_no_autotune())
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    return lambda n: model.fit(ds, steps_per_epoch=n, epochs=1, verbose=0)


def _predictor(model, x, batch):
    """`run_for(n)`: n passes of `model.predict` over `x` in batches of `batch` (warmed up)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch).prefetch(2).with_options(_no_autotune())
    model.predict(ds.take(1), verbose=0)

    def run_for(n):
        for _ in range(n):
            model.predict(ds, verbose=0)

    return run_for


def _fake_data(spec, recipe, shape, batch, steps, classes=10):
    import numpy as np

    rng = np.random.default_rng(0)
    n = batch * max(steps, 2)
    x = rng.random((n, *shape), dtype=np.float32)
    if recipe.targets == "label":
        y = rng.integers(0, classes, n).astype("int32")
    elif recipe.targets == "mask":
        y = rng.integers(0, 2, (n, *shape[:2])).astype("int32")
    else:
        y = x
    return x, y


def p2(args, tmp: str) -> dict:
    import keras
    from keras_zoo import factory, registry
    from keras_zoo.recipes import get_recipe
    from keras_zoo.recipes.objectives import build_loss

    steps = 3 if args.quick else 8
    models = P2_MODELS[:3] if args.quick else P2_MODELS
    results = {"peak_gflops": {}}
    for dtype in ("float32", "bfloat16"):
        results["peak_gflops"][dtype] = summary([matmul_peak(dtype) for _ in range(args.rounds)])

    def build(name, shape, plain):
        spec = factory.get_spec(name)
        recipe = get_recipe(spec.recipe)
        kwargs = {"input_shape": shape} if shape else {}
        if spec.accepts_num_classes and recipe.targets == "mask":
            kwargs["num_classes"] = 2
        keras.utils.set_random_seed(0)
        model = registry.build_model(spec, **kwargs)
        if plain:
            # What a user writes: the same optimizer kind at Keras's defaults, the loss, accuracy.
            model.compile(optimizer=recipe.optimizer, loss=build_loss(recipe.loss),
                          metrics=["accuracy"] if recipe.targets == "label" else None)
        else:
            recipe.compile(model, steps_per_epoch=100)
        return model, recipe

    per_model = {}
    for name, shape in models:
        spec = factory.get_spec(name)
        recipe = get_recipe(spec.recipe)
        shape = tuple(shape or spec.input_shape)
        batch = min(recipe.batch_size, 32 if shape[0] >= 64 else recipe.batch_size)
        x, y = _fake_data(spec, recipe, shape, batch, steps)
        recipe_model, _ = build(name, shape, False)
        plain_model, _ = build(name, shape, True)
        flops = forward_flops(recipe_model)
        train = _paired_ratios(_trainer(recipe_model, x, y, batch), _trainer(plain_model, x, y, batch),
                               batch, args.rounds)
        infer = _paired_ratios(_predictor(recipe_model, x, batch), _predictor(plain_model, x, batch),
                               len(x), args.rounds)
        per_model[name] = {
            "input_shape": list(shape), "batch": batch, "recipe": recipe.name,
            "forward_mflop": round(flops / 1e6, 2),
            "train_ratio": summary(train["ratio"]), "infer_ratio": summary(infer["ratio"]),
            "train_img_s": summary(train["a"]), "plain_train_img_s": summary(train["b"]),
            "train_gflops": summary([3 * flops * r / 1e9 for r in train["a"]]),
        }
    results["models"] = per_model

    # resnet50 at 128x128 against keras.applications.ResNet50.
    shape, batch = (128, 128, 3), 16
    x, y = _fake_data(None, get_recipe("resnet"), shape, batch, steps)

    zoo_model, _ = build("resnet50", shape, False)
    keras.utils.set_random_seed(0)
    keras_model = keras.applications.ResNet50(weights=None, input_shape=shape, classes=10)
    keras_model.compile(optimizer=get_recipe("resnet").build_optimizer(100), loss="sparse_categorical_crossentropy")
    flops = {"resnet50": forward_flops(zoo_model), "keras_resnet50": forward_flops(keras_model)}
    train = _paired_ratios(_trainer(zoo_model, x, y, batch), _trainer(keras_model, x, y, batch), batch, args.rounds)
    infer = _paired_ratios(_predictor(zoo_model, x, batch), _predictor(keras_model, x, batch), len(x), args.rounds)
    peak = results["peak_gflops"]["float32"]["median"]
    results["resnet50_128"] = {
        "train_ratio": summary(train["ratio"]), "infer_ratio": summary(infer["ratio"]),
        "forward_gflop": round(flops["resnet50"] / 1e9, 3),
        "keras_forward_gflop": round(flops["keras_resnet50"] / 1e9, 3),
        "train_gflops": summary([3 * flops["resnet50"] * r / 1e9 for r in train["a"]]),
        "train_fraction_of_fp32_peak": summary([3 * flops["resnet50"] * r / 1e9 / peak for r in train["a"]]),
    }
    results["met"] = bool(
        all(m["train_ratio"]["median"] >= 0.95 and m["infer_ratio"]["median"] >= 0.95 for m in per_model.values())
        and results["resnet50_128"]["train_ratio"]["median"] >= 0.95
        and results["resnet50_128"]["infer_ratio"]["median"] >= 0.95)
    return results


# --------------------------------------------------------------------------- P3 serving latency


def p3(args, tmp: str) -> dict:
    import numpy as np
    import tensorflow as tf
    from keras_zoo import create_model
    from keras_zoo.export import export_model

    model = create_model("cnn_fast")
    path = export_model(model, os.path.join(tmp, "serving"), class_names=[str(i) for i in range(10)])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    calls = 30 if args.quick else 200
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, 28, 28, 1), dtype=np.uint8)
    many = rng.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    floats = {1: one.astype("float32") / 255.0, 64: many.astype("float32") / 255.0}
    ways = {
        "export": lambda b: serve(inputs=tf.constant(one if b == 1 else many)),
        "predict": lambda b: model.predict(floats[b], verbose=0),
        "call": lambda b: model(floats[b], training=False),
    }

    def latencies(way, batch, n):
        ways[way](batch)
        out = []
        for _ in range(n):
            start = time.perf_counter()
            ways[way](batch)
            out.append(time.perf_counter() - start)
        return out

    results = {}
    for rnd in interleave(args.rounds, {w: (lambda w=w: (latencies(w, 1, calls), latencies(w, 64, calls // 4)))
                                         for w in ways}).items():
        way, rounds = rnd
        results[way] = {"p50_ms": [float(np.percentile(r[0], 50)) * 1e3 for r in rounds],
                        "p99_ms": [float(np.percentile(r[0], 99)) * 1e3 for r in rounds],
                        "batch64_img_s": [64 / float(np.median(r[1])) for r in rounds]}
    ratio = lambda key, a, b: summary([x / y for x, y in zip(results[a][key], results[b][key])])  # noqa: E731
    out = {"model": "cnn_fast (28x28x1)", "calls_per_round": calls,
           "raw": {w: {k: summary(v) for k, v in r.items()} for w, r in results.items()},
           "export_over_predict_p50": ratio("p50_ms", "export", "predict"),
           "call_over_predict_p50": ratio("p50_ms", "call", "predict"),
           "export_over_predict_p99": ratio("p99_ms", "export", "predict"),
           "export_over_predict_batch64_img_s": ratio("batch64_img_s", "export", "predict"),
           "call_over_predict_batch64_img_s": ratio("batch64_img_s", "call", "predict")}
    out["met"] = out["export_over_predict_p50"]["median"] <= 1 / 50
    return out


# --------------------------------------------------------------------------- P4 input pipeline


def _pipeline_ips(folder, batch, image_size=None, passes=2) -> list:
    from keras_zoo.data import load_splits

    splits = load_splits(folder, batch_size=batch, image_size=image_size)
    n = splits.info.num_examples["train"]
    out = []
    for _ in range(passes):
        start = time.perf_counter()
        for _ in splits.train:
            pass
        out.append(n / (time.perf_counter() - start))
    return out  # first pass decodes and fills the cache; later passes read the cache


def _consumption_ips(name, shape, batch, steps) -> float:
    import keras
    from keras_zoo import create_model
    from keras_zoo.recipes import get_recipe

    keras.utils.set_random_seed(0)
    classes = 4 if shape[0] > 28 else 10
    model = create_model(name, input_shape=shape, num_classes=classes)
    recipe = get_recipe(keras_zoo_spec_recipe(name))
    recipe.compile(model, steps_per_epoch=100)
    x, y = _fake_data(None, recipe, shape, batch, steps, classes)
    run_for = _trainer(model, x, y, batch)
    units = _units_for(run_for, steps)
    return units * batch / min(_seconds(run_for, units) for _ in range(2))


def keras_zoo_spec_recipe(name):
    from keras_zoo import factory

    return factory.get_spec(name).recipe


# VmHWM, not getrusage's ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS at fork.
_HWM = "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
# Prints the cache load_splits chose (from its one INFO line), then the peak RSS in KiB.
_PEAK_SCRIPT = """
import logging, sys
from keras_zoo.data import load_splits
said = []
handler = logging.Handler(); handler.emit = lambda record: said.append(record.getMessage())
logger = logging.getLogger("keras_zoo.data.cache"); logger.setLevel(logging.INFO); logger.addHandler(handler)
splits = load_splits(sys.argv[1], batch_size=32, cache={cache}, cache_budget={budget})
for _ in splits.train: pass
for _ in splits.train: pass
print("CACHE", next((m for k, m in (("in memory", "memory"), ("in files", "file"), ("not caching", "none"))
                     if any(k in line for line in said)), "unknown"))
""" + _HWM


def auto_cache_met(mode: str, decoded_bytes: float, budget: float) -> bool:
    """cache='auto' kept to its budget: in memory only when the decoded images fit in it.

    Peak RSS cannot judge this: the in-memory cache peaked 60 MiB *under* no cache (perf_P4.json),
    since decoding every epoch holds buffers of its own; the mode chosen can.
    """
    return mode == "memory" if decoded_bytes <= budget else mode in ("file", "none")


def p4(args, tmp: str) -> dict:
    digits = mnist_folder(tmp) or digits_folder(tmp)
    photos = photo_folder(tmp, count=200 if args.quick else 600)
    steps = 3 if args.quick else 8
    out = {}
    for label, folder, model, shape, batch in (("png28", digits, "cnn_fast", (28, 28, 1), 128),
                                                ("jpeg224", photos, "mobilenet_v3_small", (224, 224, 3), 32)):
        runs = interleave(args.rounds, {"pipeline": lambda: _pipeline_ips(folder, batch),
                                        "train_step": lambda: _consumption_ips(model, shape, batch, steps)})
        out[label] = {
            "folder": os.path.basename(folder), "consumer": f"{model} {shape} batch {batch}",
            "first_pass_over_step": summary([p[0] / s for p, s in zip(runs["pipeline"], runs["train_step"])]),
            "cached_pass_over_step": summary([p[1] / s for p, s in zip(runs["pipeline"], runs["train_step"])]),
            "pipeline_img_s": summary([p[1] for p in runs["pipeline"]]),
            "train_step_img_s": summary(runs["train_step"]),
        }
    # The decoded training images as the cache holds them (uint8); the budget is set to a third of
    # that, so cache="auto" must not hold them in memory: peak RSS over the no-cache run stays under it.
    train_images = sum(len(fs) for d, _, fs in os.walk(photos)) * 0.8
    decoded_mib = train_images * 224 * 224 * 3 / 2 ** 20
    budget = int(decoded_mib / 3 * 2 ** 20)
    cases = {"memory_cache": ("'memory'", None), "no_cache": ("'none'", None),
             "file_cache": (repr(os.path.join(tmp, "filecache")), None),
             "auto_under_budget": ("'auto'", budget)}
    peaks, modes = {}, {}
    for label, (cache, limit) in cases.items():
        done = run([sys.executable, "-c", _PEAK_SCRIPT.format(cache=cache, budget=limit), photos])
        lines = done.stdout.strip().splitlines()
        peaks[label] = int(lines[-1]) / 1024
        modes[label] = next(l.split()[1] for l in lines if l.startswith("CACHE "))
    done = run([sys.executable, "-c", "import tensorflow, keras_zoo.data\n" + _HWM, photos])
    peaks["import_only"] = int(done.stdout.strip().splitlines()[-1]) / 1024
    raw = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(photos) for f in fs) / 2 ** 20
    out["peak_rss_mib"] = {**{k: round(v, 1) for k, v in peaks.items()},
                           "decoded_uint8_train_mib": round(decoded_mib, 1), "jpeg_bytes_mib": round(raw, 1)}
    over = peaks["auto_under_budget"] - peaks["no_cache"]
    out["budget"] = {"budget_mib": round(budget / 2 ** 20, 1), "auto_over_no_cache_mib": round(over, 1),
                     "auto_mode": modes["auto_under_budget"], "modes": modes,
                     "within_budget": auto_cache_met(modes["auto_under_budget"], decoded_mib * 2 ** 20, budget),
                     "memory_cache_over_no_cache_mib": round(peaks["memory_cache"] - peaks["no_cache"], 1)}
    out["met"] = (all(out[k]["cached_pass_over_step"]["median"] >= 3 for k in ("png28", "jpeg224"))
                  and out["budget"]["within_budget"])
    return out


# --------------------------------------------------------------------------- P5 fixed cost


def p5(args, tmp: str) -> dict:
    folder = mnist_folder(tmp) or digits_folder(tmp)
    py = sys.executable
    cli = [py, "-m", "keras_zoo.cli"]
    for warm_up in ([py, "-c", "pass"], cli + ["list"], cli + ["--help"]):  # byte-code written, files cached
        run(warm_up)
    starts = interleave(max(args.rounds, 3), {
        "bare": lambda: wall([py, "-c", "pass"]),
        "list": lambda: wall(cli + ["list"]),
        "help": lambda: wall(cli + ["--help"]),
        "import": lambda: wall([py, "-c", "import keras_zoo"]),
    })
    one_epoch = interleave(args.rounds, {
        "handwritten": lambda: wall([py, os.path.join(HERE, "handwritten.py"), folder, "--epochs", "1",
                                     "--out", os.path.join(tmp, "hand1.keras")], cwd=tmp),
        "train": lambda: (shutil.rmtree(os.path.join(tmp, "one"), ignore_errors=True),
                          wall(cli + ["train", "cnn_fast", "--data", folder, "--epochs", "1", "--out",
                                      os.path.join(tmp, "one")], cwd=tmp))[1],
    })
    ratio = lambda a, b, runs: summary([x / y for x, y in zip(runs[a], runs[b])])  # noqa: E731
    out = {"data": os.path.basename(folder),
           "wall_seconds": {k: summary(v) for k, v in {**starts, **one_epoch}.items()},
           # every round's time, in order, so a ratio of medians can be told from a median of ratios
           "runs": {k: [round(x, 4) for x in v] for k, v in {**starts, **one_epoch}.items()},
           "list_over_bare": ratio("list", "bare", starts), "help_over_bare": ratio("help", "bare", starts),
           "import_over_bare": ratio("import", "bare", starts),
           "train_1_epoch_over_handwritten": ratio("train", "handwritten", one_epoch)}
    out["met"] = out["list_over_bare"]["median"] <= 1.5 and out["train_1_epoch_over_handwritten"]["median"] <= 1.15
    return out


# --------------------------------------------------------------------------- the docs table


def _fmt(s: dict, digits=2) -> str:
    if not s or s.get("median") is None:
        return "n/a"
    return f"{s['median']:.{digits}f} (min {s['min']:.{digits}f})"


def p1_every_round_reached(r: dict) -> bool:
    """Every round of both sides reached the target (a median over rounds that did is not enough)."""
    if "all_reached" in r:
        return bool(r["all_reached"])
    return all(run.get("reached") for side in r.get("runs", {}).values() for run in side)


def table_rows(results: dict) -> list:
    rows = []
    r = results.get("P1")
    if r and "skipped" not in r:
        rows.append(("P1", "time to 98 % test accuracy, `keras-zoo train cnn_fast --data` / hand-written",
                     _fmt(r["time_to_target_ratio"], 3), "<= 0.5",
                     p1_every_round_reached(r) and (r["time_to_target_ratio"]["median"] or 1.0) <= 0.5))
        rows.append(("P1", "final test accuracy, cnn_fast (hand-written: " + _fmt(r["hand_final_accuracy"], 4) + ")",
                     _fmt(r["zoo_final_accuracy"], 4), ">= 0.988", r["zoo_final_accuracy"]["median"] >= 0.988))
    r = results.get("P2")
    if r:
        for name, m in r["models"].items():
            rows.append(("P2", f"`{name}` train / infer img/s, recipe / plain compile",
                         f"{_fmt(m['train_ratio'])} / {_fmt(m['infer_ratio'])}", ">= 0.95",
                         m["train_ratio"]["median"] >= 0.95 and m["infer_ratio"]["median"] >= 0.95))
        q = r["resnet50_128"]
        rows.append(("P2", "`resnet50` 128x128 train / infer img/s, zoo / `keras.applications.ResNet50`",
                     f"{_fmt(q['train_ratio'])} / {_fmt(q['infer_ratio'])}", ">= 0.95",
                     q["train_ratio"]["median"] >= 0.95 and q["infer_ratio"]["median"] >= 0.95))
        rows.append(("P2", "`resnet50` training GFLOP/s / fp32 matmul peak (peak fp32 "
                     f"{_fmt(r['peak_gflops']['float32'], 0)}, bf16 {_fmt(r['peak_gflops']['bfloat16'], 0)} GFLOP/s)",
                     _fmt(q["train_fraction_of_fp32_peak"]), "-", None))
    r = results.get("P3")
    if r:
        rows.append(("P3", "batch-1 p50 latency, export / `model.predict`", _fmt(r["export_over_predict_p50"], 4),
                     "<= 0.02", r["met"]))
        rows.append(("P3", "batch-1 p50 latency, `model(x)` / `model.predict`", _fmt(r["call_over_predict_p50"], 4),
                     "-", None))
        rows.append(("P3", "batch-64 img/s, export / `model.predict`",
                     _fmt(r["export_over_predict_batch64_img_s"]), "-", None))
    r = results.get("P4")
    if r:
        for key in ("png28", "jpeg224"):
            rows.append(("P4", f"pipeline img/s (cached pass; first pass {_fmt(r[key]['first_pass_over_step'])}) / "
                               f"train step, {key} ({r[key]['consumer']})",
                         _fmt(r[key]["cached_pass_over_step"]), ">= 3", r[key]["cached_pass_over_step"]["median"] >= 3))
        p, b = r["peak_rss_mib"], r["budget"]
        if isinstance(b, dict):
            rows.append(("P4", f"peak RSS MiB over two passes of {p['decoded_uint8_train_mib']} MiB of decoded "
                               f"uint8 training images, cache in memory / none / files (importing alone: "
                               f"{p['import_only']})",
                         f"{p['memory_cache']} / {p['no_cache']} / {p['file_cache']}", "-", None))
            if "auto_mode" in b:
                rows.append(("P4", f"`cache='auto'` with a {b['budget_mib']} MiB budget, {p['decoded_uint8_train_mib']} "
                                   f"MiB decoded: the cache it chose (MiB held over no cache: {b['auto_over_no_cache_mib']})",
                             b["auto_mode"], "file or none", b["within_budget"]))
            else:  # written when the check compared peak RSS, which the memory cache kept under no cache
                rows.append(("P4", f"`cache='auto'` with a {b['budget_mib']} MiB budget: MiB held over no cache "
                                   "(a check that could not fail; rerun P4 for the cache it chose)",
                             f"{b['auto_over_no_cache_mib']}", "-", None))
        else:  # a result written before load_splits had a budget
            rows.append(("P4", f"peak RSS MiB over two passes of {p['decoded_float32_mib']} MiB of decoded float32 "
                               f"images, cache in memory / none / files (importing alone: {p['import_only']})",
                         f"{p['memory_cache']} / {p['no_cache']} / {p['file_cache']}", "budget not measured", None))
    r = results.get("P5")
    if r:
        rows.append(("P5", "`keras-zoo list` / `python -c pass`", _fmt(r["list_over_bare"]), "<= 1.5",
                     r["list_over_bare"]["median"] <= 1.5))
        rows.append(("P5", "`keras-zoo --help` / `python -c pass`", _fmt(r["help_over_bare"]), "-", None))
        rows.append(("P5", "`import keras_zoo` / `python -c pass`", _fmt(r["import_over_bare"]), "-", None))
        rows.append(("P5", "1-epoch `keras-zoo train cnn_fast` / hand-written 1-epoch script",
                     _fmt(r["train_1_epoch_over_handwritten"]), "<= 1.15",
                     r["train_1_epoch_over_handwritten"]["median"] <= 1.15))
    return rows


def render_table(results: dict) -> str:
    machines = {r.get("machine", {}).get("cpu") for r in results.values() if r}
    loads = [r["machine"]["load"][0] for r in results.values() if r and "machine" in r]
    lines = ["| | ratio (median, min over rounds) | measured | bar | met |", "|---|---|---|---|---|"]
    for bench, what, value, bar, met in table_rows(results):
        lines[-1:-1] = []
        lines.append(f"| {bench} | {what} | {value} | {bar} | {'yes' if met else ('no' if met is False else '')} |")
    # the header's first column is the benchmark; second its description
    lines[0] = "| | what (ratio: median, min over rounds) | measured | bar | met |"
    flags = sorted({f for r in results.values() if r for f in r.get("machine", {}).get("flags", [])})
    note = (f"Measured on {', '.join(sorted(m for m in machines if m)) or 'an unknown CPU'} "
            f"(flags: {', '.join(flags) or 'none of avx2/avx512f/avx512_bf16/amx'}), 1-minute load "
            f"{min(loads):.1f}-{max(loads):.1f} at the start of each benchmark" if loads else "")
    return "\n".join(lines) + ("\n\n" + note + "; the JSON under `benchmarks/results/perf_*.json` has every round."
                               if note else "")


def load_results() -> dict:
    out = {}
    for name in BENCHMARKS:
        path = os.path.join(RESULTS, f"perf_{name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                out[name] = json.load(f)
    return out


def update_readme(results: dict, path: str = README) -> bool:
    """Rewrite the table between the markers of `path` (docs/performance.md); False without markers."""
    from keras_zoo._io import atomic_write_text

    with open(path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(path, head + BEGIN + "\n" + render_table(results) + "\n" + END + tail)
    return True


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    suite_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description="keras_zoo benchmarks (see the module docstring)")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}, or one suite of --list "
                             "(its own options after --)")
    parser.add_argument("--list", action="store_true", help="list P1-P5 and the suites, and exit")
    parser.add_argument("--quick", action="store_true", help="1 round, fewer steps: a few minutes")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison (default 3; 1 with --quick)")
    parser.add_argument("--no-table", "--no-readme", dest="no_readme", action="store_true",
                        help="do not rewrite the table in docs/performance.md")
    parser.add_argument("--p1-data", metavar="FOLDER", default=None,
                        help="run P1 on this folder of train/<class>/ and test/<class>/ images instead of "
                             "mnist-t10k; the target is the hand-written script's final accuracy and the "
                             "result goes to perf_P1-data-<folder name>.json, outside the docs table")
    parser.add_argument("--p1-color", metavar="FOLDER", default=None,
                        help="only P1 on colour photos: cnn_color against handwritten_color.py on this "
                             "train/test folder (see p1_color in this file); perf_P1-color-<folder name>.json")
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name}	the performance suite (see `python benchmarks/run.py --help`)")
        for name, path in suites().items():
            print(f"{name}	{suite_summary(path)}")
        return 0
    if args.p1_color:
        return _p1_color_main(args, parser)
    names = [b.strip() for b in args.only.split(",") if b.strip()]
    if len(names) == 1 and names[0] in suites():
        return run_suite(names[0], suite_args)
    if suite_args:
        parser.error(f"options after -- go to one suite of --list; --only {args.only!r} is not one")
    chosen = [b.upper() for b in names]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; accepted: {list(BENCHMARKS)}, or one of the suites "
                     f"{sorted(suites())}")
    if args.p1_data:
        try:
            check_p1_folder(args.p1_data)
        except ValueError as e:
            parser.error(str(e))
        if "P1" not in chosen:
            parser.error(f"--p1-data is a P1 option; --only {args.only!r} does not run P1")
    args.rounds = args.rounds or (1 if args.quick else 3)
    MIN_SECONDS[0] = 0.5 if args.quick else 2.0
    PAIR_SECONDS[0] = 0.1 if args.quick else 0.25
    PAIR_CALLS[0] = 9 if args.quick else 33
    functions = {"P1": p1, "P2": p2, "P3": p3, "P4": p4, "P5": p5,
                 "Q": _quantize_suite}
    os.makedirs(RESULTS, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keras_zoo_bench_") as tmp:
        for name in chosen:
            before = machine()
            started = time.perf_counter()
            print(f"{name} ...", file=sys.stderr, flush=True)
            result = functions[name](args, tmp)
            saved_as = name
            if name == "P1" and args.p1_data:
                base = os.path.basename(os.path.normpath(args.p1_data))
                saved_as = "P1-data-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "folder")
            result = save(saved_as, {"machine": before, "quick": args.quick, "rounds": args.rounds,
                                 "seconds": round(time.perf_counter() - started, 1), **result})
            print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "raw")}, indent=1)[:3000])
    if not args.no_readme and update_readme(load_results()):
        print(f"the table in {README} updated from {RESULTS}/perf_*.json", file=sys.stderr)
    return 0


def _quantize_suite(args, table):
    import quantize

    return quantize.suite(args, table)


def _p1_color_main(args, parser) -> int:

    try:
        check_p1_folder(args.p1_color)
    except ValueError as e:
        parser.error(str(e).replace("--p1-data", "--p1-color"))
    rounds = args.rounds or (1 if args.quick else 3)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(os.path.normpath(args.p1_color))).strip("._")
    with tempfile.TemporaryDirectory(prefix="keras_zoo_bench_") as tmp:
        before, started = machine(), time.perf_counter()
        result = save(f"P1-color-{base or 'folder'}", {"machine": before, "rounds": rounds, **p1_color(
            args.p1_color, rounds, tmp), "seconds": round(time.perf_counter() - started, 1)})
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1)[:3000])
    return 0


# --------------------------------------------------------------------------- P1 on colour photos

COLOR_MODEL = "cnn_color"
COLOR_TIME_RATIO_MAX = 0.5
COLOR_POINTS_AHEAD_MIN = 4.0


def p1_color(folder: str, rounds: int, tmp: str) -> dict:
    done = []

    def zoo():
        result = _zoo_round(COLOR_MODEL, folder, tmp, f"color-zoo{len(done)}", None)
        done.append(1)
        return result

    def hand():
        probe = os.path.join(tmp, f"color-hand{len(done)}.jsonl")
        launched = time.time()
        out = run([sys.executable, os.path.join(HERE, "handwritten_color.py"), folder, "--probe", probe,
                   "--out", os.path.join(tmp, "hand_color.keras")], cwd=tmp)
        total = time.time() - launched
        with open(probe, encoding="utf-8") as f:
            probe_seconds = [json.loads(line) for line in f if line.strip()][-1]["probe_seconds"]
        done.append(1)
        return {**_read_probe(probe, launched, None), "total_seconds": round(total, 2),
                "process_seconds": round(total - probe_seconds, 2),
                "final_accuracy": float(re.search(r"accuracy ([0-9.]+)", out.stdout).group(1))}

    runs = interleave(rounds, {"handwritten": hand, COLOR_MODEL: zoo})
    ratios, ahead = [], []
    for z, h in zip(runs[COLOR_MODEL], runs["handwritten"]):
        reached = first_reach(z, h["final_accuracy"])
        z["reached_hand_final"] = reached
        ratios.append(reached["seconds"] / h["process_seconds"] if reached else None)
        ahead.append(round(100 * (z["final_accuracy"] - h["final_accuracy"]), 2))
    s = {"time_to_hand_final_over_hand_process": summary(ratios), "points_ahead": summary(ahead),
         "zoo_final_accuracy": summary([z["final_accuracy"] for z in runs[COLOR_MODEL]]),
         "hand_final_accuracy": summary([h["final_accuracy"] for h in runs["handwritten"]]),
         "hand_process_seconds": summary([h["process_seconds"] for h in runs["handwritten"]]),
         "zoo_total_seconds": summary([z["total_seconds"] for z in runs[COLOR_MODEL]]),
         "all_reached": None not in ratios}
    return {
        "command": f"keras-zoo train {COLOR_MODEL} --data {folder}  vs  python benchmarks/handwritten_color.py {folder}",
        "data": os.path.abspath(folder), "split": "held-out FOLDER/test (nothing chosen on it)",
        "runs": runs, **s,
        "bars": {"time_ratio_max": COLOR_TIME_RATIO_MAX, "points_ahead_min": COLOR_POINTS_AHEAD_MIN},
        "met": bool(s["all_reached"] and s["time_to_hand_final_over_hand_process"]["median"] <= COLOR_TIME_RATIO_MAX
                    and s["points_ahead"]["median"] >= COLOR_POINTS_AHEAD_MIN),
    }


if __name__ == "__main__":
    sys.exit(main())
