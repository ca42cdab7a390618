"""Speed defaults chosen from the CPU that runs them, never assumed: machines of one kind differ in CPU model.

bfloat16 halves the bytes and, on a CPU with bf16 matrix instructions (Intel AMX, or AVX512-BF16 as on AMD Zen 4),
runs matmuls 2-3x faster than float32. Without them (AVX2 only) torch emulates it, about 5x slower than float32.
So "auto" means bfloat16 only where the hardware computes it. `benchmarks/train_bench.py` and the leaderboard print
what was chosen and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

AUTO = "auto"
FLOAT32, BFLOAT16 = "float32", "bfloat16"


@dataclass(frozen=True)
class CpuFeatures:
    capability: str  # torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512, ...
    amx: bool
    avx512_bf16: bool
    cores: int  # the cores this process may run on

    @property
    def native_bf16(self) -> bool:
        return self.amx or self.avx512_bf16


def cpu_features() -> CpuFeatures:
    import torch

    return CpuFeatures(
        capability=torch.backends.cpu.get_cpu_capability(),
        amx=bool(torch.cpu._is_amx_tile_supported()),
        avx512_bf16=bool(torch.cpu._is_avx512_bf16_supported()),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def fast_cpu_dtype(features: CpuFeatures | None = None) -> str:
    """bfloat16 where the CPU has bf16 matrix instructions, float32 elsewhere."""
    features = features or cpu_features()
    return BFLOAT16 if features.native_bf16 else FLOAT32


def resolve_dtype(dtype: str | None, device: str = "cpu", features: CpuFeatures | None = None) -> str | None:
    """An explicit dtype is kept; "auto" (or None) becomes `fast_cpu_dtype` on CPU and stays "auto" (as stored)
    elsewhere, where the checkpoint's own dtype is the right default."""
    if dtype not in (None, AUTO):
        return dtype
    return fast_cpu_dtype(features) if device == "cpu" else AUTO


def default_threads(features: CpuFeatures | None = None) -> int:
    """One thread per core this process may use: more only oversubscribe."""
    return (features or cpu_features()).cores


def describe(features: CpuFeatures | None = None) -> str:
    features = features or cpu_features()
    flags = [name for name, on in (("amx", features.amx), ("avx512_bf16", features.avx512_bf16)) if on]
    return (
        f"CPU {features.capability} ({', '.join(flags) or 'no bf16 matrix instructions'}), {features.cores} cores: "
        f"{fast_cpu_dtype(features)} by default"
    )
