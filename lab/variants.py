"""The variants the course compares, and how one run times them all: every model through its runtimes.

    built = {"full": (model, tokenizer, tuple(quantize.ROUTES)), "student-T2-a0.5": (...)}
    result = variants.time_models(built, profile, run_on="cpu")   # one interleaved run (lab.bench.measure)

A variant is a model through a runtime, keyed 'full/onnx-int8-qint8': week 1's model through every week-4 route
(lab.quantize: PyTorch fp32/int8, ONNX Runtime fp32/int8, torch.compile; fp16 on CUDA), week 2's LoRA adapter merged
into its base, and week 5's students in PyTorch fp32 and ONNX Runtime int8. They are timed interleaved,
round-robin, so drift on a shared machine hits them alike and identical arithmetic (week 1's model and the merged
LoRA model; the three 2-layer students) measures alike.
"""
from __future__ import annotations

from pathlib import Path

import torch

from lab import bench, data, distill, quantize
from lab.record import scratch

FULL = "full"                    # week 1's fine-tuned model
LORA = "lora-merged"             # week 2's adapter folded into its base: the same arithmetic as FULL in fp32
REFERENCE = f"{FULL}/{quantize.REFERENCE}"
STUDENT_ROUTES = (quantize.REFERENCE, quantize.INT8)
STUDENTS = (distill.LABELS_ONLY, *distill.SWEEP)

# The toy-sized profiles must execute pages in seconds: a few rounds, one retry, and no waiting for quiet. Their
# models answer in well under a millisecond, so a busy machine always widens the spread and a wait buys nothing (the
# rehearsal's week 4 waited the full 60 s in every test run on 2 busy cores). The full-size rehearsal still waits.
SMOKE_QUIET_WAIT_S = 0.0
TOY_PROFILES = ("smoke", "rehearsal-smoke")


def quiet_wait_s(profile) -> float:
    """How long a noisy latency run waits for quiet before it measures again (s): none on a toy-sized profile."""
    return SMOKE_QUIET_WAIT_S if profile.name in TOY_PROFILES else bench.QUIET_WAIT_S


def variant(model: str, route: str) -> str:
    """'full/onnx-int8-qint8': a model through a runtime, the key of every latency row."""
    return f"{model}/{route}"


def time_models(built: dict, profile, run_on: str = "cpu") -> dict:
    """The models of `built` (name -> (model, tokenizer, routes)) through their routes, timed in one interleaved
    run on the profile's test batches (tokenized by the first model's tokenizer: the models share one vocabulary).

    Plain JSON: {"device", "threads", "models", "rows": one per (variant, batch) with model, route, median/p10/p90,
    spread, repeats, threads, seq_len, load_avg, others_cores; "skipped": routes that could not run here, with the
    reason; "reference", "rounds", "attempts", "max_spread", "load", "others_cores"} and "noisy" when the last run was
    still not to be trusted (lab.bench.untrusted: the reference spread too wide, or the machine was busy).
    """
    _, tokenizer, _ = next(iter(built.values()))
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batches = data.sample_batches(enc, profile.bench_batch_sizes, seed=profile.seed)
    sample = batches[max(batches)]
    threads = torch.get_num_threads()
    runs, skipped = {}, []
    with scratch.directory("onnx") as tmp:        # one subfolder per model: each has its own fp32 export
        for name, (model, _, routes) in built.items():
            workdir = Path(tmp) / name
            workdir.mkdir()
            for route in routes:
                if why := quantize.skip_reason(route, run_on, profile):
                    skipped.append({"model": name, "route": route, "reason": why})
                    continue
                try:
                    runs[variant(name, route)], _, _ = quantize.build(quantize.ROUTES[route], model, sample, run_on,
                                                                      workdir, threads, placement=False)
                except Exception as e:  # a route that cannot be built is a row with the reason, as in week 4
                    skipped.append({"model": name, "route": route, "reason": quantize.failure(e)})
        reference = REFERENCE if REFERENCE in runs else next(iter(runs))
        result = bench.measure(runs, batches, reference=reference, rounds=profile.bench_repeats, device=run_on,
                               threads=threads, seed=profile.seed,
                               quiet_wait_s=quiet_wait_s(profile))
    for row in result["rows"]:
        row["model"], row["route"] = row["variant"].split("/", 1)
    out = {"device": run_on, "threads": threads, "models": sorted(built), "skipped": skipped, **result}
    return out
