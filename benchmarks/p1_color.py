"""P1 on colour photos: ``keras-zoo train cnn_color --data FOLDER`` against the hand-written classic
Keras CIFAR-10 script (`handwritten_color.py`), interleaved, whole processes timed.

    python benchmarks/run.py --p1-color FOLDER [--rounds 3]

The bar (issue 25): the zoo reaches the accuracy the hand-written script finishes at, on FOLDER/test,
in at most 0.5x the hand-written script's whole-process time (launch to exit, the probe's own time
subtracted), and finishes at least 4 points above it; judged on the medians over rounds. Per-epoch
held-out accuracy comes from `probe.py` (it only measures). The result goes to
``benchmarks/results/perf_P1-color-<folder name>.json``, with the CPU's flags and load average.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time

from run import HERE, _read_probe, first_reach, interleave, run, summary

MODEL = "cnn_color"
TIME_RATIO_MAX = 0.5
POINTS_AHEAD_MIN = 4.0


def p1_color(folder: str, rounds: int, tmp: str) -> dict:
    done = []

    def zoo():
        probe, out = os.path.join(tmp, f"color-zoo{len(done)}.jsonl"), os.path.join(tmp, f"color-zoo-run{len(done)}")
        shutil.rmtree(out, ignore_errors=True)
        launched = time.time()
        run([sys.executable, os.path.join(HERE, "probe.py"), probe, os.path.join(folder, "test"), "--",
             "train", MODEL, "--data", folder, "--out", out], cwd=tmp)
        total = time.time() - launched
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        done.append(1)
        return {**_read_probe(probe, launched, None), "total_seconds": round(total, 2),
                "final_accuracy": metrics["test"]["accuracy"], "epochs_run": metrics["epochs_run"],
                "precision": metrics.get("precision")}

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

    runs = interleave(rounds, {"handwritten": hand, MODEL: zoo})
    ratios, ahead = [], []
    for z, h in zip(runs[MODEL], runs["handwritten"]):
        reached = first_reach(z, h["final_accuracy"])
        z["reached_hand_final"] = reached
        ratios.append(reached["seconds"] / h["process_seconds"] if reached else None)
        ahead.append(round(100 * (z["final_accuracy"] - h["final_accuracy"]), 2))
    s = {"time_to_hand_final_over_hand_process": summary(ratios), "points_ahead": summary(ahead),
         "zoo_final_accuracy": summary([z["final_accuracy"] for z in runs[MODEL]]),
         "hand_final_accuracy": summary([h["final_accuracy"] for h in runs["handwritten"]]),
         "hand_process_seconds": summary([h["process_seconds"] for h in runs["handwritten"]]),
         "zoo_total_seconds": summary([z["total_seconds"] for z in runs[MODEL]]),
         "all_reached": None not in ratios}
    return {
        "command": f"keras-zoo train {MODEL} --data {folder}  vs  python benchmarks/handwritten_color.py {folder}",
        "data": os.path.abspath(folder), "split": "held-out FOLDER/test (nothing chosen on it)",
        "runs": runs, **s,
        "bars": {"time_ratio_max": TIME_RATIO_MAX, "points_ahead_min": POINTS_AHEAD_MIN},
        "met": bool(s["all_reached"] and s["time_to_hand_final_over_hand_process"]["median"] <= TIME_RATIO_MAX
                    and s["points_ahead"]["median"] >= POINTS_AHEAD_MIN),
    }
