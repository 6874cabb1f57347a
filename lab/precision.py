"""The device and the arithmetic a run uses: fp32 on a CPU, bf16 on GPUs that have it, fp16 with loss scaling on
a T4.

    precision_for("cuda")                 # 'fp16' on a T4 (compute capability 7.5), 'bf16' on an A100 (8.0)
    with autocast("cpu", "fp16"): ...      # the T4's autocast, run on a CPU (slowly: for tests)

Device-generic on purpose: torch.autocast and torch.amp.GradScaler take the device's type, so the T4's fp16 path
(lab.train's autocast plus GradScaler) runs in a CPU test, not first in front of a class.
"""
from __future__ import annotations

import torch


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def precision_for(device: str) -> str:
    """'fp32' on the CPU; on CUDA 'bf16' where the GPU has it (capability 8.0+), else 'fp16' (T4, V100, P100)."""
    if not str(device).startswith("cuda"):
        return "fp32"   # CPU autocast would change the numbers and is rarely faster for training
    return precision_for_capability(torch.cuda.get_device_capability(torch.device(device)))


def precision_for_capability(capability: tuple[int, int]) -> str:
    """bf16 from compute capability 8.0 (A100, L4, H100: bf16 tensor cores), fp16 below it (T4 is 7.5, V100 7.0):
    torch.cuda.is_bf16_supported() also says True where bf16 is only emulated, at a fraction of fp16's speed."""
    return "bf16" if tuple(capability) >= (8, 0) else "fp16"


PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(device, precision: str):
    """Autocast on the device's own type, so the T4's fp16 path also runs (slowly, for tests) on a CPU."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=precision != "fp32")
