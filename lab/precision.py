"""The device and the arithmetic a run uses: each hardware's own half precision where it has one natively, bf16 on
CPUs with AMX or AVX-512 bf16 and on GPUs of compute capability 8.0+, fp16 with loss scaling on a T4, fp32 elsewhere.

    precision_for("cuda")                 # 'fp16' on a T4 (compute capability 7.5), 'bf16' on an A100 (8.0)
    precision_for("cpu")                  # 'bf16' on a Xeon with AVX-512 bf16 or AMX, 'fp32' on most laptops
    with autocast("cpu", "fp16"): ...      # the T4's autocast, run on a CPU (slowly: for tests)

Device-generic on purpose: torch.autocast and torch.amp.GradScaler take the device's type, so the T4's fp16 path
(lab.train's autocast plus GradScaler) runs in a CPU test, not first in front of a class.
"""
from __future__ import annotations

import torch


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def precision_for(device: str) -> str:
    """On CUDA 'bf16' where the GPU has it (capability 8.0+), else 'fp16' (T4, V100, P100); on a CPU 'bf16' where it
    has native bf16 instructions (cpu_has_bf16), else 'fp32'."""
    if not str(device).startswith("cuda"):
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision_for_capability(torch.cuda.get_device_capability(torch.device(device)))


# The CPU flags that mean bf16 matrix arithmetic in hardware (Linux /proc/cpuinfo names): AVX-512 bf16 dot products
# (Cooper Lake, Sapphire Rapids and later Xeons; AMD Zen 4+) and AMX tiles. Measured on a 2-core Xeon with
# avx512_bf16: a MiniLM training step (batch 32 x 64 tokens) took 427 ms under bf16 autocast against 707-725 ms in
# fp32. Without them bf16 is emulated and slower than fp32, as on most laptops (and on Apple silicon's torch).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where there is none (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            return {flag for line in f if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """True where the CPU computes bf16 natively (BF16_FLAGS), detected from its flags, never assumed."""
    return bool(set(BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def precision_for_capability(capability: tuple[int, int]) -> str:
    """bf16 from compute capability 8.0 (A100, L4, H100: bf16 tensor cores), fp16 below it (T4 is 7.5, V100 7.0):
    torch.cuda.is_bf16_supported() also says True where bf16 is only emulated, at a fraction of fp16's speed."""
    return "bf16" if tuple(capability) >= (8, 0) else "fp16"


PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(device, precision: str):
    """Autocast on the device's own type, so the T4's fp16 path also runs (slowly, for tests) on a CPU."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=precision != "fp32")
