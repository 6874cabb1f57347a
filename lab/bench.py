"""A latency harness that states its own spread, and measures the variants it compares together.

    batches = data.sample_batches(enc, batch_sizes=(1, 32))        # real test snippets, so real sequence lengths
    result = bench.measure({"fp32": run_fp32, "int8": run_int8}, batches, reference="fp32", rounds=20)
    result["rows"]      # one row per (variant, batch): median/p10/p90/spread, repeats, threads, seq_len, load seen
    result.get("noisy") # present when the run stayed untrustworthy: {"why", "load", "others_cores"}

Each row holds the median and the 10th/90th percentiles of its timed calls, after warm-up calls that are not timed
(first calls allocate memory, pick kernels, fill caches). On a GPU, work is queued asynchronously, so the clock is
read only after `torch.cuda.synchronize()`. The spread (p90 - p10) / median is part of every row: two variants whose
p10..p90 ranges overlap are not distinguishable on this machine, whatever their medians say (`distinguishable`).

The variants are measured in ONE interleaved run, so that the machine's drift hits them alike: each round times one
call of every (variant, batch), in an order shuffled per round by a seeded RNG. Variants timed a minute apart (one
after another) meet different machines on a shared VM; variants a second apart do not. A busy machine is measured,
not obeyed: the CPU that other processes used is read over every run (others_since); a run whose reference spread
too wide, or that shared the cores with other processes (busy), is measured again (after a bounded wait until they
leave the cores, with twice the rounds), and a result that stays untrustworthy comes back marked noisy, with what it
saw, instead of stopping the course. The 1-minute load average is recorded beside it, for the reader.
"""
from __future__ import annotations

import os
import random
import statistics
import time
from typing import Callable

import numpy as np
import psutil
import torch


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


# The reference's (p90 - p10) / median above which a run is not trusted. On the quiet 2-core VM the course is built
# on, PyTorch fp32 spreads 0.02-0.25; with one core taken by another process it spread 0.89 (issue 19). Half the
# median is wide enough that a quiet run never trips it and narrow enough that a 2x ratio still means something.
MAX_SPREAD = 0.5
QUIET_WAIT_S = 60.0     # at most this long waiting for other processes to leave the cores before measuring again
QUIET_POLL_S = 5.0      # each wait window: long enough to read others_since to a few hundredths of a core

# A narrow spread does not make a quiet machine. With more runnable threads than cores, PyTorch's OpenMP threads
# wait on each other for every op, and they slow down evenly: beside a one-core hog and two other 2-thread jobs,
# week 1's model in PyTorch fp32 took 978 ms at batch 1 with a spread of 0.05, against 11.9 ms on the quiet machine.
# What shows it is the CPU other processes take. One measure serves while we run and while we wait, which the
# 1-minute load average cannot: it counts our own threads while we run, and for a minute after we stop. Measured on
# the 2-core Xeon (Intel, torch 2.13.0): others took 0.00 cores while a 2-thread matmul ran alone, and 0.70 cores
# beside a one-core hog (1.00 while we slept). A quarter of the cores is far above the quiet reading and under
# what one hog takes on 2 cores, or on a student's 8-core laptop with a browser tab spinning two.
BUSY_SHARE = 0.25
MIN_WINDOW_S = 1.0      # /proc/stat counts in 10 ms ticks: a shorter window cannot tell 0.25 cores from noise


def cpu_mark() -> tuple[float, float, float]:
    """(wall clock s, the machine's busy CPU s summed over its cores, this process's CPU s over all its threads):
    the start of a window for others_since."""
    t, mine = psutil.cpu_times(), psutil.Process().cpu_times()
    # steal: time the hypervisor gave another VM. On a shared cloud VM that is a crowded machine too.
    machine = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal", "interrupt"))
    return time.perf_counter(), machine, mine.user + mine.system


def others_since(mark: tuple[float, float, float]) -> float | None:
    """How many cores' worth of CPU other processes used since `mark` (cpu_mark()): the machine's busy CPU time less
    ours, over the wall time. None for a window under MIN_WINDOW_S, too short to say."""
    wall, machine, mine = cpu_mark()
    if wall - mark[0] < MIN_WINDOW_S:
        return None
    return round(max(0.0, ((machine - mark[1]) - (mine - mark[2])) / (wall - mark[0])), 2)


def interleaved(variants: dict[str, Callable[[dict], object]], batches: dict[int, dict], *, rounds: int,
                warmup: int = 3, seed: int = 0, device: str = "cpu", threads: int | None = None
                ) -> tuple[list[dict], list[float | None], float | None]:
    """(rows, loads, others): every (variant, batch) timed once per round, in a seeded shuffled order, `rounds`
    times, after `warmup` untimed calls of each. loads: the 1-minute load average before the first round and after
    each; others: the cores other processes used over the timed rounds (others_since)."""
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
    order, rng, loads, mark = list(times), random.Random(seed), [_load()], cpu_mark()
    for _ in range(rounds):
        rng.shuffle(order)
        for v, b in order:
            start = time.perf_counter()
            variants[v](batches[b])
            sync()
            times[(v, b)].append((time.perf_counter() - start) * 1e3)
        loads.append(_load())
    others = others_since(mark)
    seen = [x for x in loads if x is not None]
    rows = [{"variant": v, "device": device, "batch": b, "seq_len": int(batches[b]["input_ids"].shape[1]),
             "threads": threads, "load_avg": max(seen) if seen else None, "others_cores": others, **summarize(t)}
            for (v, b), t in times.items()]
    return rows, loads, others


def spread_of(rows: list[dict], variant: str) -> float:
    """The widest relative spread of one variant over its batch sizes."""
    mine = [r["spread"] for r in rows if r["variant"] == variant]
    if not mine:
        measured = sorted({r["variant"] for r in rows})
        raise KeyError(f"reference {variant!r} is not among the measured variants {measured}")
    return max(mine)


def busy(others: float | None) -> str | None:
    """Why a run's numbers cannot be trusted whatever their spread (None when they can): other processes used more
    than BUSY_SHARE of the cores (`others`, from others_since). None where that could not be read."""
    cores = os.cpu_count() or 1
    if others is None or others <= BUSY_SHARE * cores:
        return None
    return (f"other processes used {others:.2f} of the {cores} cores, above {BUSY_SHARE * cores:g}: PyTorch slows "
            f"evenly then, so a narrow spread does not vouch for these numbers")


def wait_for_quiet(limit_s: float, poll_s: float = QUIET_POLL_S) -> float | None:
    """Sleep in windows of `poll_s` until one finds the machine not busy (busy: the same rule a run is judged by),
    at most `limit_s` seconds in all, saying so each window; returns the cores others used in the last window (None
    when no window was long enough to read, as with limit_s 0)."""
    from lab.record.progress import note
    waited, others = 0.0, None
    while waited < limit_s:
        mark = cpu_mark()
        step = min(poll_s, limit_s - waited)
        time.sleep(step)
        waited += step
        others = others_since(mark)
        if not busy(others):
            break
        note(f"[lab] latency: other processes use {others:.2f} cores; waiting for quiet ({waited:.0f}/"
             f"{limit_s:.0f} s)")
    return others


def untrusted(rows: list[dict], others: float | None, reference: str, max_spread: float = MAX_SPREAD) -> str | None:
    """Why one interleaved run is not to be trusted, or None: the reference spread wider than max_spread, or the
    machine was busy."""
    spread = spread_of(rows, reference)
    if spread > max_spread:
        return f"{reference}'s p10-p90 spread was {spread:.2f} of its median (> {max_spread})"
    return busy(others)


def measure(variants: dict[str, Callable[[dict], object]], batches: dict[int, dict], *, reference: str,
            rounds: int, warmup: int = 3, seed: int = 0, device: str = "cpu", threads: int | None = None,
            max_spread: float = MAX_SPREAD, attempts: int = 2, quiet_wait_s: float = QUIET_WAIT_S) -> dict:
    """Interleaved latency of every variant, measured again when a run is not to be trusted (untrusted).

    Returns {"rows", "reference", "rounds", "attempts", "max_spread", "load", "others_cores"} and, when the last of
    `attempts` runs was still untrusted, "noisy": {"why", "load", "others_cores"}: numbers to show with a warning,
    never to publish. Each further attempt first waits (at most quiet_wait_s) for other processes to leave the
    cores, then doubles the rounds; if the machine is still busy after the wait, it measures no more (beside a
    one-core hog, PyTorch ran 3x to 10x slower on the 2-core Xeon: a second run with twice the rounds would cost a
    student minutes and measure the same crowd).
    """
    from lab.record.progress import note
    if reference not in variants:
        raise KeyError(f"reference {reference!r} is not a variant; pass one of {sorted(variants)}")
    loads: list[float | None] = []
    others: list[float | None] = []       # cores other processes used: each run's, and the wait's last window
    done = 0
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            note(f"[lab] latency: {why}; waiting up to {quiet_wait_s:.0f} s for quiet, then measuring again")
            others.append(wait_for_quiet(quiet_wait_s))
            if still := busy(others[-1]):   # still crowded: more rounds would measure the crowd again
                note(f"[lab] latency: still busy after the wait ({still}); keeping these numbers, marked noisy")
                break
            rounds *= 2
            note(f"[lab] latency: measuring again with {rounds} rounds")
        rows, seen, run_others = interleaved(variants, batches, rounds=rounds, warmup=warmup,
                                             seed=seed + attempt - 1, device=device, threads=threads)
        loads += seen
        others.append(run_others)
        done += 1
        why = untrusted(rows, run_others, reference, max_spread)
        if why is None:
            break
    out = {"rows": rows, "reference": reference, "rounds": rounds, "attempts": done, "max_spread": max_spread,
           "load": loads, "others_cores": others}
    if why is not None:
        out["noisy"] = {"why": f"{why}, after {done} run(s), the last with {rounds} rounds", "load": loads,
                        "others_cores": others}
    return out


def _load() -> float | None:
    """The 1-minute load average, recorded next to the numbers for the reader (it counts our own threads too, and
    lags by a minute: busy() judges by others_since instead)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):      # Windows has no load average
        return None


def distinguishable(a: dict, b: dict) -> bool:
    """True when two latency rows' p10..p90 ranges do not overlap: the difference is signal, not noise."""
    return a["p90_ms"] < b["p10_ms"] or b["p90_ms"] < a["p10_ms"]


def by_variant(rows: list[dict]) -> dict[str, dict[int, dict]]:
    """variant -> {batch: row}."""
    out: dict[str, dict[int, dict]] = {}
    for r in rows:
        out.setdefault(r["variant"], {})[r["batch"]] = r
    return out
