"""The deployments the course decides for, and what each budgets: the assumptions behind week 4's and week 6's
decisions, written down here in one place and shown on the page next to the verdict, so a reader can disagree with
an assumption without having to distrust the measurement (the decisions themselves: lab.display.week4.decide and
lab.capstone.recommend).
"""
from __future__ import annotations

from dataclasses import dataclass


INT8_ROUTES = ("onnx-int8-qint8", "onnx-int8-quint8", "pytorch-int8")
SIZE_SHARE = 0.10     # size "matters" when the fp32 model takes more than a tenth of what the deployment budgets


@dataclass(frozen=True)
class Deployment:
    name: str
    device: str                    # whose records speak for it: "cuda" or "cpu"
    batch: int                     # the batch size it serves
    budget: str                    # what the model's bytes compete for
    budget_mb: float | None = None          # an assumption (MB); None: taken from the record (GPU memory)
    bandwidth_mb_s: float | None = None     # cold-start download speed (MB/s), an assumption
    proxy: str = ""                # when the measured hardware only stands in for the real one


DEPLOYMENTS = [
    Deployment("Kaggle GPU", "cuda", 32, "GPU memory (from the record)"),
    Deployment("laptop CPU", "cpu", 1, "8 GB of laptop RAM (assumed)", budget_mb=8000),
    Deployment("phone or edge device", "cpu", 1, "a 200 MB cellular app-download cap (assumed)", budget_mb=200,
               proxy="measured on this CPU; a phone CPU is slower, but the int8/fp32 ratio is the question"),
    Deployment("serverless, cold start", "cpu", 1, "downloading the model at 50 MB/s on each cold start (assumed)",
               bandwidth_mb_s=50),
]


def budget_of(dep: Deployment, rec: dict) -> float | None:
    """What the deployment budgets, in MB: its assumption, else the GPU memory the record's provenance names
    (lab.record.env reports GiB); None when neither is known."""
    if dep.budget_mb is not None:
        return dep.budget_mb
    gib = (rec["provenance"].get("gpu") or {}).get("memory_gb") or 0
    return gib * 2**30 / 1e6 or None


