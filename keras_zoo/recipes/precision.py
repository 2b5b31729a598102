"""A recipe's precision, checked against the machine it is about to train on.

Mixed precision pays off only where the hardware computes in the 16-bit type: a GPU, or a CPU with
bfloat16 (float16) instructions that oneDNN uses: ``amx_bf16`` or ``avx512_bf16`` (``amx_fp16`` or
``avx512_fp16``) in /proc/cpuinfo. Elsewhere, as on an AVX2-only CPU, the 16-bit math is emulated
around float32 arithmetic: issue 13 measured ``mixed_bfloat16`` training 8x slower than float32 on such
a machine. (On an AMD EPYC with AVX512_BF16 and no AMX, cnn_small trained at 0.7x-1.4x the float32
rate over interleaved runs: not emulated.) So on a CPU-only machine without those flags,
`effective_precision` trains in float32 instead and says so in one warning line. Set
``KERAS_ZOO_KEEP_PRECISION=1`` to keep the recipe's policy anyway (to measure it, or where the check
is wrong).

A recipe's default precision is ``"auto"`` (`choose_precision`): ``mixed_bfloat16`` only where the CPU
has native bfloat16 units and that policy was measured, for the model's family on that kind of
unit, to train faster at equal held-out accuracy (within `ACCURACY_TOLERANCE_POINTS`); float32
everywhere else. The choice and its reason go into one log line and ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os

logger = logging.getLogger(__name__)

# The CPU flags that make each mixed policy run its matmuls and convolutions in 16 bits.
NATIVE_FLAGS = {"mixed_bfloat16": ("amx_bf16", "avx512_bf16"), "mixed_float16": ("amx_fp16", "avx512_fp16")}
KEEP_ENV = "KERAS_ZOO_KEEP_PRECISION"
_warned = set()  # one warning per policy per process (a tuner builds many models)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def effective_precision(requested: str) -> str:
    """The dtype policy to build with: `requested`, or "float32" where it would run emulated."""
    if requested not in NATIVE_FLAGS or os.environ.get(KEEP_ENV, "") not in ("", "0"):
        return requested
    flags = cpu_flags()
    if not flags or _has_gpu():  # no /proc/cpuinfo: nothing to go on, keep what was asked
        return requested
    if any(flag in flags for flag in NATIVE_FLAGS[requested]):
        return requested
    if requested not in _warned:
        _warned.add(requested)
        logger.warning("precision %s: this CPU has no %s and there is no GPU, so the 16-bit math would "
                       "be emulated (mixed_bfloat16 measured 8x slower than float32 on an AVX2-only CPU); "
                       "training in float32 instead (set %s=1 to keep %s)", requested,
                       " or ".join(NATIVE_FLAGS[requested]), KEEP_ENV, requested)
    return "float32"


# --------------------------------------------------------------------------- "auto": by measurement

AUTO = "auto"
ACCURACY_TOLERANCE_POINTS = 0.3  # "equal held-out accuracy": mixed_bfloat16 at most this many points lower
BF16_UNITS = ("amx_bf16", "avx512_bf16")  # in order of preference: AMX tiles, then AVX-512 bf16 dot products


@dataclasses.dataclass(frozen=True)
class Bf16Measurement:
    """mixed_bfloat16 against float32 for one model family on one kind of bf16 unit.

    speedup: (lowest, highest) training-speed ratio bf16 / float32 over the runs;
    accuracy_points: bf16's held-out accuracy minus float32's, in points (None: not compared);
    source: where and how it was measured.
    """

    speedup: tuple
    accuracy_points: float | None
    source: str


# What has been measured. A family/unit pair that is absent trains in float32 ("not measured").
MEASURED_BF16 = {
    ("cnn", "amx_bf16"): Bf16Measurement(
        (2.3, 2.4), -0.4,
        "issue 25's measurements on an Intel Xeon (2 cores, amx_bf16): cnn_fast trained 2.3-2.4x faster "
        "(two runs); at width 32 with crop and flip on 10,000 CIFAR-10 photos 71.2 % held-out in bf16 "
        "against 71.6 % in float32 (one run each)"),
    ("resnet", "amx_bf16"): Bf16Measurement(
        (1.0, 1.5), None,
        "issue 25's measurements on an Intel Xeon (2 cores, amx_bf16): resnet20 trained 1.0-1.5x "
        "faster (two runs); held-out accuracy not compared"),
    ("cnn", "avx512_bf16"): Bf16Measurement(
        (0.74, 1.22), None,
        "an AMD EPYC (avx512_bf16, no AMX): cnn_small trained at 0.74x float32's rate by the median "
        "of five interleaved runs, 1.22x by the minimum (README, Precision safety)"),
}


def _fmt_speedup(m: Bf16Measurement) -> str:
    low, high = m.speedup
    return f"{low:g}x" if low == high else f"{low:g}-{high:g}x"


def choose_precision(requested: str, family: str | None) -> tuple:
    """(dtype policy, reason) for a recipe's `requested` precision and a model `family`.

    "auto" is decided by `MEASURED_BF16` on CPUs with native bf16 units and is float32 elsewhere;
    any other request is kept, except where the machine would emulate it (`effective_precision`).
    """
    if requested != AUTO:
        chosen = effective_precision(requested)
        if chosen == requested:
            return chosen, f"the recipe asks for {requested}"
        return chosen, (f"the recipe asks for {requested}, but this CPU has no "
                        f"{' or '.join(NATIVE_FLAGS[requested])} and there is no GPU (it would be emulated)")
    flags = cpu_flags()
    units = [unit for unit in BF16_UNITS if unit in flags]
    if not units:
        what = "no CPU flags to read" if not flags else f"this CPU has no {' or '.join(BF16_UNITS)}"
        return "float32", f"{what}: mixed_bfloat16 would be emulated (measured 8x slower on an AVX2-only CPU)"
    if _has_gpu():
        return "float32", "a GPU is present: the automatic choice is measured for CPUs only"
    unit = units[0]
    measured = MEASURED_BF16.get((family, unit))
    where = f"the {family} family on a CPU with {unit}"
    if measured is None:
        return "float32", f"mixed_bfloat16 has not been measured for {where}"
    speed = _fmt_speedup(measured)
    if measured.speedup[0] <= 1.0:
        return "float32", f"mixed_bfloat16 trained {where} at {speed} float32's rate, not faster ({measured.source})"
    if measured.accuracy_points is None:
        return "float32", (f"mixed_bfloat16 trained {where} {speed} faster, but its held-out accuracy was not "
                           f"compared ({measured.source})")
    if measured.accuracy_points < -ACCURACY_TOLERANCE_POINTS:
        return "float32", (f"mixed_bfloat16 trained {where} {speed} faster, but {-measured.accuracy_points:g} "
                           f"points lower held-out, more than {ACCURACY_TOLERANCE_POINTS:g} ({measured.source})")
    return "mixed_bfloat16", (f"measured {speed} faster for {where} at held-out accuracy within "
                              f"{ACCURACY_TOLERANCE_POINTS:g} points ({measured.source})")
