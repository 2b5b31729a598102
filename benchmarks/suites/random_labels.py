"""Bar: `keras-zoo experiment random_labels` at default size reproduces Zhang et al.'s qualitative
result on a CPU within 10 minutes.

Runs the CLI command exactly as a user would, times it end to end (process start, TensorFlow import,
six training runs, plot), checks the bar on the JSON table the command writes, and records it all in
benchmarks/results/experiment_random_labels.json.

    python benchmarks/run.py --only random_labels -- [--out runs/experiment-random_labels]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
ROOT = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "experiment_random_labels.json")
TIME_LIMIT_S = 600


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("runs", "experiment-random_labels"))
    args = parser.parse_args()

    exe = shutil.which("keras-zoo")
    cmd = [exe] if exe else [sys.executable, "-m", "keras_zoo.cli"]
    cmd += ["experiment", "random_labels", "--out", args.out]
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + paths)

    load_before = _uptime()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    load_after = _uptime()
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode

    with open(os.path.join(ROOT, args.out, "random_labels.json"), encoding="utf-8") as f:
        table = json.load(f)
    rows = {r["corruption"]: r for r in table["rows"]}
    true, rand = rows["true labels"], rows["random labels"]
    chance = rand["chance"]
    plot = os.path.join(ROOT, args.out, "random_labels.png")
    checks = {
        "true-label test accuracy far above chance (>= chance + 50 points)":
            true["test_accuracy"] >= chance + 0.5,
        "random-label training accuracy >= 95 %": rand["train_accuracy"] >= 0.95,
        "random-label test accuracy within 5 points of chance":
            abs(rand["test_accuracy"] - chance) <= 0.05,
        "plot written": os.path.exists(plot),
        f"within {TIME_LIMIT_S} s": seconds <= TIME_LIMIT_S,
    }
    record = {
        "topic": "random_labels",
        "data": table["settings"]["data"],
        "network": f"mlp_lecture 2 x {table['settings']['width']}",
        "epochs": table["settings"]["epochs"],
        "rows": table["rows"],
        "bar": checks,
        "bar_met": all(checks.values()),
        "seconds": round(seconds, 1),
        "command": " ".join(shlex.quote(c) for c in ["keras-zoo", *cmd[1 if exe else 3:]]),
        "load": {"before": load_before, "after": load_after},
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    sys.path.insert(0, ROOT)
    from keras_zoo._io import atomic_write_text

    atomic_write_text(RESULT, json.dumps(record, indent=2) + "\n")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"{seconds:.0f} s end to end; written {RESULT}")
    return 0 if record["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
