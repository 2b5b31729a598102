"""Two fixed costs of a run, each as a ratio against a reference measured in the same script.

- scan: `keras_zoo.data.checks.scan_images` (one lazy PIL open per file, no pixel decoding) against
  the scan it replaced (header open, then a second open to `verify()` PNGs and decode the rest) and
  against decoding every file with PIL, over an image folder;
- startup: `keras-zoo list` against a bare `python -c pass`.

Rounds are interleaved; min and median are reported with the CPU flags and the load average.

    python benchmarks/run.py --only fixed_costs -- FOLDER [--rounds 5]
(FOLDER: e.g. the PNG class folders `python ../shared/data/mnist-t10k/make_folders.py /tmp/mnist_png` writes)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from keras_zoo.data.checks import image_header, scan_images  # noqa: E402

EXTENSIONS = (".png", ".jpg", ".jpeg")


def previous_scan(paths):
    """The scan before issue 13: a header open, then a second open to verify (PNG) or decode."""
    from PIL import Image

    for path in paths:
        image_header(path)
        with Image.open(path) as im:
            im.verify() if im.format == "PNG" else im.load()


def decode_all(paths):
    from PIL import Image

    for path in paths:
        with Image.open(path) as im:
            im.load()


def machine() -> dict:
    flags = set()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            flags = set(next((line for line in f if line.startswith("flags")), ":").partition(":")[2].split())
    keep = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    return {"cpu_flags": keep, "cpus": os.cpu_count(), "load": os.getloadavg()[0]}


def summary(times: dict, reference: str) -> dict:
    out = {k: {"min_s": round(min(v), 4), "median_s": round(statistics.median(v), 4)} for k, v in times.items()}
    for k in times:
        if k != reference:
            out[k]["ratio_min"] = round(min(times[k]) / min(times[reference]), 3)
            out[k]["ratio_median"] = round(statistics.median(times[k]) / statistics.median(times[reference]), 3)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    files = sorted(p for p in glob.glob(os.path.join(args.folder, "**", "*"), recursive=True)
                   if p.lower().endswith(EXTENSIONS))
    if not files:
        raise SystemExit(f"no images under {args.folder!r}")
    scan = {"previous_scan": [], "scan_images": [], "pil_decode_all": []}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: .pyc cached
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "keras-zoo list": [sys.executable, "-m", "keras_zoo.cli", "list"]}
    startup = {k: [] for k in commands}
    subprocess.run(commands["keras-zoo list"], env=env, stdout=subprocess.DEVNULL, check=True)  # writes .pyc
    for _ in range(args.rounds):
        for name, fn in (("previous_scan", previous_scan), ("scan_images", scan_images),
                         ("pil_decode_all", decode_all)):
            start = time.perf_counter()
            fn(files)
            scan[name].append(time.perf_counter() - start)
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
            startup[name].append(time.perf_counter() - start)
    result = {"files": len(files), "folder": args.folder, "scan": summary(scan, "previous_scan"),
              "startup": summary(startup, "python -c pass"), **machine()}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
