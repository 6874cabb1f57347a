"""A latency harness that states its own spread, and measures the variants it compares together.

    batches = bench.sample_batches(enc, batch_sizes=(1, 32))       # real test snippets, so real sequence lengths
    result = bench.measure({"fp32": run_fp32, "int8": run_int8}, batches, reference="fp32", rounds=20)
    result["rows"]      # one row per (variant, batch): median/p10/p90/spread, repeats, threads, seq_len, load seen
    result.get("noisy") # present when the reference stayed too spread out to trust: {"why": ..., "load": [...]}

Each row holds the median and the 10th/90th percentiles of its timed calls, after warm-up calls that are not timed
(first calls allocate memory, pick kernels, fill caches). On a GPU, work is queued asynchronously, so the clock is
read only after `torch.cuda.synchronize()`. The spread (p90 - p10) / median is part of every row: two variants whose
p10..p90 ranges overlap are not distinguishable on this machine, whatever their medians say (`distinguishable`).

The variants are measured in ONE interleaved run, so that the machine's drift hits them alike: each round times one
call of every (variant, batch), in an order shuffled per round by a seeded RNG. Variants timed a minute apart (one
after another) meet different machines on a shared VM; variants a second apart do not. A busy machine is measured,
not obeyed: the 1-minute load average is read before and after every round; a run whose reference spread too wide,
or that shared the cores with other processes (busy), is measured again (after a bounded wait for quiet, with twice
the rounds), and a result that stays untrustworthy comes back marked noisy, with the load it saw, instead of
stopping the course.
"""
from __future__ import annotations

import os
import random
import statistics
import time
from typing import Callable

import numpy as np
import torch

from lab import data


def _sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        return torch.cuda.synchronize   # wait for queued GPU kernels: otherwise we time the launch, not the work
    return lambda: None


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


# The reference's (p90 - p10) / median above which a run is not trusted. On the quiet 2-core VM the course is built
# on, PyTorch fp32 spreads 0.02-0.25; with one core taken by another process it spread 0.89 (issue 19). Half the
# median is wide enough that a quiet run never trips it and narrow enough that a 2x ratio still means something.
MAX_SPREAD = 0.5
QUIET_WAIT_S = 60.0     # at most this long waiting for the load to fall before measuring again
QUIET_POLL_S = 5.0

# A narrow spread does not make a quiet machine. With more runnable threads than cores, PyTorch's OpenMP threads
# wait on each other for every op, and they slow down evenly: beside a one-core hog and two other 2-thread jobs
# (load average 5.5 to 6.6 on 2 cores), week 1's model in PyTorch fp32 took 978 ms at batch 1 with a spread of 0.05,
# against 11.9 ms on the quiet machine, while ONNX Runtime's rows stayed near their quiet values. Only the load
# shows that. Measuring alone, our own 2 threads keep the load near 2 on 2 cores (1.3 to 1.7 seen).
BUSY_LOAD_PER_CORE = 1.25


def interleaved(variants: dict[str, Callable[[dict], object]], batches: dict[int, dict], *, rounds: int,
                warmup: int = 3, seed: int = 0, device: str = "cpu", threads: int | None = None
                ) -> tuple[list[dict], list[float | None]]:
    """(rows, loads): every (variant, batch) timed once per round, in a seeded shuffled order, `rounds` times,
    after `warmup` untimed calls of each. loads: the 1-minute load average before the first round and after each."""
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: need at least 1 timed round (20 or more for a stated spread)")
    threads = threads if threads is not None else torch.get_num_threads()
    sync = _sync(device)
    for run in variants.values():
        for batch in batches.values():
            for _ in range(warmup):
                run(batch)
    sync()
    times: dict[tuple[str, int], list[float]] = {(v, b): [] for v in variants for b in batches}
    order, rng, loads = list(times), random.Random(seed), [_load()]
    for _ in range(rounds):
        rng.shuffle(order)
        for v, b in order:
            start = time.perf_counter()
            variants[v](batches[b])
            sync()
            times[(v, b)].append((time.perf_counter() - start) * 1e3)
        loads.append(_load())
    seen = [x for x in loads if x is not None]
    rows = [{"variant": v, "device": device, "batch": b, "seq_len": int(batches[b]["input_ids"].shape[1]),
             "threads": threads, "load_avg": max(seen) if seen else None, **summarize(t)}
            for (v, b), t in times.items()]
    return rows, loads


def spread_of(rows: list[dict], variant: str) -> float:
    """The widest relative spread of one variant over its batch sizes."""
    mine = [r["spread"] for r in rows if r["variant"] == variant]
    if not mine:
        measured = sorted({r["variant"] for r in rows})
        raise KeyError(f"reference {variant!r} is not among the measured variants {measured}")
    return max(mine)


def wait_for_quiet(limit_s: float, poll_s: float = QUIET_POLL_S) -> float | None:
    """Wait until the 1-minute load average is under half the cores (what this machine can give a benchmark
    alone), at most `limit_s` seconds, saying so every poll; returns the last load read."""
    from lab.progress import note
    cores = os.cpu_count() or 1
    waited, load = 0.0, _load()
    while load is not None and load >= cores / 2 and waited < limit_s:
        note(f"[lab] latency: load average {load} on {cores} cores; waiting for quiet ({waited:.0f}/{limit_s:.0f} s)")
        step = min(poll_s, limit_s - waited)
        time.sleep(step)
        waited += step
        load = _load()
    return load


def busy(loads: list) -> str | None:
    """Why a run's numbers cannot be trusted whatever their spread (None when they can): the median 1-minute load
    average over its rounds was above BUSY_LOAD_PER_CORE per core, so other processes held the cores. None where
    the load cannot be read (Windows)."""
    seen = [x for x in loads if x is not None]
    cores = os.cpu_count() or 1
    if not seen or statistics.median(seen) <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"the 1-minute load average was {statistics.median(seen):.1f} (median over the rounds) on {cores} cores, "
            f"above {BUSY_LOAD_PER_CORE * cores:g}: other processes held the cores, and PyTorch slows evenly then, "
            f"so a narrow spread does not vouch for these numbers")


def untrusted(rows: list[dict], loads: list, reference: str, max_spread: float = MAX_SPREAD) -> str | None:
    """Why one interleaved run is not to be trusted, or None: the reference spread wider than max_spread, or the
    machine was busy."""
    spread = spread_of(rows, reference)
    if spread > max_spread:
        return f"{reference}'s p10-p90 spread was {spread:.2f} of its median (> {max_spread})"
    return busy(loads)


def measure(variants: dict[str, Callable[[dict], object]], batches: dict[int, dict], *, reference: str,
            rounds: int, warmup: int = 3, seed: int = 0, device: str = "cpu", threads: int | None = None,
            max_spread: float = MAX_SPREAD, attempts: int = 2, quiet_wait_s: float = QUIET_WAIT_S) -> dict:
    """Interleaved latency of every variant, measured again when a run is not to be trusted (untrusted).

    Returns {"rows", "reference", "rounds", "attempts", "max_spread", "load"} and, when the last of `attempts` runs
    was still untrusted, "noisy": {"why", "load"}: numbers to show with a warning, never to publish. Each further
    attempt first waits (at most quiet_wait_s) for the load to fall, then doubles the rounds; if the machine is
    still busy after the wait, it measures no more (under a one-core hog PyTorch runs 10x slower: a second run
    with twice the rounds would cost a student minutes and measure the same crowd).
    """
    from lab.progress import note
    if reference not in variants:
        raise KeyError(f"reference {reference!r} is not a variant; pass one of {sorted(variants)}")
    loads: list[float | None] = []
    done = 0
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            now = wait_for_quiet(quiet_wait_s)
            loads.append(now)
            if busy([now]):     # still crowded after the wait: more rounds would measure the crowd again
                note(f"[lab] latency: {why}; still busy after waiting {quiet_wait_s:.0f} s (load average {now}): "
                     "keeping these numbers, marked noisy")
                break
            rounds *= 2
            note(f"[lab] latency: {why}; measuring again with {rounds} rounds")
        rows, seen = interleaved(variants, batches, rounds=rounds, warmup=warmup, seed=seed + attempt - 1,
                                 device=device, threads=threads)
        loads += seen
        done += 1
        why = untrusted(rows, seen, reference, max_spread)
        if why is None:
            break
    out = {"rows": rows, "reference": reference, "rounds": rounds, "attempts": done, "max_spread": max_spread,
           "load": loads}
    if why is not None:
        out["noisy"] = {"why": f"{why}, after {done} run(s), the last with {rounds} rounds", "load": loads}
    return out


def _load() -> float | None:
    """The 1-minute load average: other processes competing for the cores inflate latency (badly for PyTorch,
    whose OpenMP threads wait on each other when a core is taken), and this records it next to the numbers."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):      # Windows has no load average
        return None


def distinguishable(a: dict, b: dict) -> bool:
    """True when two latency rows' p10..p90 ranges do not overlap: the difference is signal, not noise."""
    return a["p90_ms"] < b["p10_ms"] or b["p90_ms"] < a["p10_ms"]


NOT_DISTINGUISHABLE = "not distinguishable here"


def as_fast(ref: dict, mine: dict, digits: int = 2) -> str:
    """'1.7x as fast' (ref's median over mine's) when the two rows' ranges are apart, else NOT_DISTINGUISHABLE:
    a ratio inside the noise is not a speedup, whatever its value."""
    if not distinguishable(ref, mine):
        return NOT_DISTINGUISHABLE
    return f"{ref['median_ms'] / mine['median_ms']:.{digits}g}x as fast"


def ms(row: dict, interval: bool = True) -> str:
    """'12.3 (11.9–13.0)': a latency row's median with its p10–p90 range, in ms, to 3 significant digits. Every
    page writes latencies through this, so one measured value reads the same wherever it appears."""
    text = f"{row['median_ms']:.3g}"
    return f"{text} ({row['p10_ms']:.3g}–{row['p90_ms']:.3g})" if interval else text


def by_variant(rows: list[dict]) -> dict[str, dict[int, dict]]:
    """variant -> {batch: row}."""
    out: dict[str, dict[int, dict]] = {}
    for r in rows:
        out.setdefault(r["variant"], {})[r["batch"]] = r
    return out
