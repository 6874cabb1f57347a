"""Sizes on disk in MB (10^6 bytes), counted one way for every week: the files themselves, or a model's weights
written as safetensors (what lab.checkpoint writes and the hub serves), so that week 2's full model and week 5's
student are measured alike.

    sizes.file_mb(folder / "fp32.onnx", folder / "fp32.onnx.data")   # an ONNX model may keep weights beside it
    sizes.safetensors_mb(model)                                       # written to a scratch file, then measured
"""
from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from lab import checkpoint
from lab.record import scratch


def file_mb(*paths) -> float:
    """The files' sizes summed, MB; a path that does not exist counts 0 (the optional .data beside an ONNX)."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).exists()) / 1e6


def safetensors_mb(model) -> float:
    """MB of every weight of `model` in one safetensors file: the size of handing the model in."""
    with scratch.directory("weights-size") as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(checkpoint.weights(model), path)
        return file_mb(path)
