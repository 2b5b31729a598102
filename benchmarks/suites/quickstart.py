"""The foundation's bars, measured the way a user meets them.

1. `keras-zoo list` wall time, beside a bare `python -c pass` (the interpreter start it cannot avoid)
   and `python -c "import tensorflow"` (what it avoids), in the same script.
2. `keras-zoo train cnn_small --data digits`: held-out accuracy and training seconds.
3. The same command on a folder of 28x28 grayscale PNGs of the digits in class sub-folders, with no
   other flag: held-out accuracy.

    python benchmarks/run.py --only quickstart
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
sys.path.insert(0, ROOT)

from keras_zoo._io import atomic_write_text  # noqa: E402


def wall(cmd, repeats=5, **kw) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, **kw)
        best = min(best, time.perf_counter() - start)
    return best


def digit_folder(folder: str, size: int = 28) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
        Image.fromarray((img / 16.0 * 255).astype("uint8"), mode="L").resize(
            (size, size), Image.BILINEAR).save(os.path.join(folder, str(label), f"{i}.png"))


def train(data: str, cwd: str) -> dict:
    out = os.path.join(cwd, "run-" + os.path.basename(data))
    subprocess.run([sys.executable, "-m", "keras_zoo.cli", "train", "cnn_small", "--data", data,
                    "--out", out], check=True, capture_output=True, cwd=cwd)
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def main():
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    bare = wall([sys.executable, "-c", "pass"], env=env)
    listing = wall([sys.executable, "-m", "keras_zoo.cli", "list"], env=env)
    tf_import = wall([sys.executable, "-c", "import tensorflow"], repeats=2, env=env)
    print(f"keras-zoo list {listing:.3f} s; bare interpreter {bare:.3f} s; import tensorflow {tf_import:.2f} s")

    os.environ.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        digits = train("digits", tmp)
        digit_folder(os.path.join(tmp, "digits28"))
        folder = train(os.path.join(tmp, "digits28"), tmp)
    for name, s in (("digits", digits), ("folder of 28x28 PNGs", folder)):
        print(f"cnn_small on {name}: test accuracy {s['test']['accuracy']:.4f} after {s['epochs_run']} "
              f"epochs, {s['train_seconds']:.1f} s of training, input {s['input_shape']}")
    result = {
        "topic": "quickstart",
        "list_seconds": round(listing, 3), "bare_python_seconds": round(bare, 3),
        "import_tensorflow_seconds": round(tf_import, 2), "list_over_bare": round(listing / bare, 2),
        "digits": {"accuracy": digits["test"]["accuracy"], "train_seconds": digits["train_seconds"],
                   "epochs": digits["epochs_run"]},
        "folder28": {"accuracy": folder["test"]["accuracy"], "train_seconds": folder["train_seconds"],
                     "epochs": folder["epochs_run"], "input_shape": folder["input_shape"]},
        "load": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "command": "python benchmarks/run.py --only quickstart",
    }
    atomic_write_text(os.path.join(RESULTS, "quickstart.json"), json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
