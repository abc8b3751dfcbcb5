"""What processor this is, read at run time: its model name and the instruction-set flags that
choose a fast path (bf16 matrix units: ``amx_bf16``, ``avx512_bf16``). Benchmarks print it with
every figure, since the machines change between runs."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# flags worth printing beside a figure: the matrix and vector units torch's CPU kernels use
NOTABLE = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2",
           "fma", "asimd", "sve", "bf16")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() in ("model name", "Model"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> set[str]:
    """The flags of the first processor (x86 ``flags``, Arm ``Features``); empty if unknown."""
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            return set(line.split(":", 1)[1].split())
    return set()


def onednn_bf16() -> bool:
    """Whether torch's oneDNN kernels have bf16 on this CPU (its LSTM, packed matrix products):
    without it torch's fused LSTM fails in bf16 and its other bf16 products are emulated."""
    import torch

    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def describe() -> str:
    """One line for a benchmark's header: model, the notable flags present, cores, torch."""
    import os

    import torch

    flags = cpu_flags()
    present = [f for f in NOTABLE if f in flags]
    return (f"{cpu_model()}; flags: {' '.join(present) or 'none of note'}; "
            f"{os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads; "
            f"torch {torch.__version__}, python {platform.python_version()}")
