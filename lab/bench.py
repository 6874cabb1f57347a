"""A latency harness that states its own spread.

    batches = bench.sample_batches(enc, batch_sizes=(1, 32))       # real test snippets, so real sequence lengths
    rows = bench.latency(lambda b: model(**b), batches, route="pytorch-fp32", device="cpu", repeats=20)
    bench.frame(rows)                                               # tidy: one row per (route, device, batch size)

Each row holds the median and the 10th/90th percentiles of `repeats` timed calls, after warm-up calls that are not
timed (first calls allocate memory, pick kernels, fill caches). On a GPU, work is queued asynchronously, so the clock
is read only after `torch.cuda.synchronize()`. The spread (p90 - p10) / median is part of every row: two routes whose
p10..p90 ranges overlap are not distinguishable on this machine, whatever their medians say.
"""
from __future__ import annotations

import os
import random
import statistics
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from lab import data


def _sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        return torch.cuda.synchronize   # wait for queued GPU kernels: otherwise we time the launch, not the work
    return lambda: None


def time_calls(fn: Callable[[], object], *, repeats: int, warmup: int = 3, device: str = "cpu") -> list[float]:
    """Wall time of `repeats` calls of fn, in ms, after `warmup` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: need at least 1 timed call (20 or more for a stated spread)")
    sync = _sync(device)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def summarize(times_ms: list[float]) -> dict:
    """Median, p10 and p90 (ms), and the relative spread (p90 - p10) / median."""
    p10, p90 = np.percentile(times_ms, [10, 90])
    med = statistics.median(times_ms)
    return {"median_ms": med, "p10_ms": float(p10), "p90_ms": float(p90),
            "spread": float((p90 - p10) / med) if med > 0 else float("nan"), "repeats": len(times_ms)}


def sample_batches(enc: data.Encoded, batch_sizes=(1, 32), seed: int = 0) -> dict[int, dict[str, torch.Tensor]]:
    """One batch per size, drawn at random (seeded) from real examples and padded to its longest: the sequence
    length is what the data gives, not a made-up constant. Same seed, same batches, for every route."""
    rng = random.Random(seed)
    out = {}
    for b in batch_sizes:
        if b > len(enc):
            raise ValueError(f"batch size {b} > {len(enc)} examples; use a larger test split or smaller batches")
        idx = rng.sample(range(len(enc)), b)
        batch = data.collate(enc, idx)
        out[b] = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return out


def latency(run: Callable[[dict], object], batches: dict[int, dict], *, route: str, device: str,
            repeats: int, warmup: int = 3, threads: int | None = None) -> list[dict]:
    """Tidy rows, one per batch size: route, device, batch, seq_len, threads, median/p10/p90 ms, spread."""
    threads = threads if threads is not None else torch.get_num_threads()
    rows = []
    for b, batch in batches.items():
        times = time_calls(lambda: run(batch), repeats=repeats, warmup=warmup, device=device)
        rows.append({"route": route, "device": device, "batch": b, "seq_len": int(batch["input_ids"].shape[1]),
                     "threads": threads, "load_avg": _load(), **summarize(times)})
    return rows


def _load() -> float | None:
    """The 1-minute load average: other processes competing for the cores inflate latency (badly for PyTorch,
    whose OpenMP threads wait on each other when a core is taken), and this records it next to the numbers."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):      # Windows has no load average
        return None


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def distinguishable(a: dict, b: dict) -> bool:
    """True when two latency rows' p10..p90 ranges do not overlap: the difference is signal, not noise."""
    return a["p90_ms"] < b["p10_ms"] or b["p90_ms"] < a["p10_ms"]
