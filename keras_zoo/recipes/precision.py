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
"""

from __future__ import annotations

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
