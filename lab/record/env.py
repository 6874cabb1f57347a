"""Provenance: which hardware, which libraries and which commit produced a number.

Every measurement record carries `provenance()`, so a page can label a row "NVIDIA T4, torch 2.13" and a reader
can tell a laptop number from a GPU one. Nothing here may fail: a missing library reads as None.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

from lab.record import paths

OUTPUT_PATHS = ("course/measurements", "_freeze", "notebooks", "benchmarks/results")
LIBRARIES = ("torch", "transformers", "peft", "onnxruntime", "onnxruntime-gpu", "onnx", "safetensors")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    # /proc/cpuinfo names the model on Linux; platform.processor() is often empty there.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        import psutil
        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        return None


def gpu() -> dict | None:
    """Name, memory (GB), compute capability and driver/CUDA of GPU 0, or None without a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    return {
        "name": p.name,
        "memory_gb": round(p.total_memory / 2**30, 1),
        "capability": f"{p.major}.{p.minor}",
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "driver": _nvidia_driver(),
        "count": torch.cuda.device_count(),
    }


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def ort_providers() -> list[str] | None:
    """Execution providers this onnxruntime build *lists*. Listed is not loadable: see lab.runtime."""
    try:
        import onnxruntime
        return onnxruntime.get_available_providers()
    except ImportError:
        return None


def lab_version() -> str:
    """The installed package's version (what a student's record names instead of a commit)."""
    return _version("ecbs5200-lab") or "unknown"


def git_state(root: Path | None = None) -> dict:
    """The checkout's commit and whether its code differs from it; both None when lab is pip-installed."""
    root = root or paths.checkout()
    if root is None:
        return {"commit": None, "dirty": None}

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    # "dirty" means the code differs from the commit. The outputs a render writes (records, freeze, notebooks)
    # are left out: otherwise the first record written would mark every later one as dirty.
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 *(f":(exclude){p}" for p in OUTPUT_PATHS))
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def threads() -> int | None:
    try:
        import torch
        return torch.get_num_threads()
    except ImportError:
        return None


def device_label(prov: dict) -> str:
    """Short label for a table row: the GPU name if the run used one, else the CPU, e.g. 'CPU: AMD EPYC 7B13 (2 cores)'."""
    if prov.get("device") == "cuda" and prov.get("gpu"):
        return f"GPU: {prov['gpu']['name']}"
    return f"CPU: {prov.get('cpu', '?')} ({prov.get('cpu_count', '?')} cores)"


def provenance(device: str = "cpu") -> dict:
    """Everything needed to say where a number came from. `device` is what the measured code ran on."""
    return {
        "device": device,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads(),
        "memory_gb": memory_gb(),
        "gpu": gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "ort_providers": ort_providers(),
        "lab": lab_version(),
        "git": git_state(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can we reach the Hugging Face hub? A quick TCP check, so that offline runs fail in seconds instead of
    after ~25 s of retries inside huggingface_hub. HF_HUB_OFFLINE=1 means no, without trying."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
