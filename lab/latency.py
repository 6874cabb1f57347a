"""One latency per (variant, runtime, batch, hardware): every model the course compares, timed in one run.

    rec = measured("latency/variants", latency.record, profile=profile, device=device, run_on=device)
    lat = latency.lookup(rec)                 # "full/onnx-int8-qint8" -> {batch: row (median_ms, p10_ms, p90_ms ...)}

The variants are week 1's model through every week-4 route (lab.quantize: PyTorch fp32/int8, ONNX Runtime
fp32/int8, torch.compile; fp16 on CUDA), week 2's LoRA adapter merged into its base, and week 5's three students
in PyTorch fp32 and ONNX Runtime int8. They are timed by lab.bench.measure, interleaved round-robin, so drift on a
shared machine hits them alike and identical arithmetic (week 1's model and the merged LoRA model; the three
2-layer students) measures alike. Pages 4, 5 and 6 read every latency from this record and nowhere else.

The models come from the weeks' own runs. The records that train them (week2/lora, week5/distill) are asked for
first, through `measured`, so on a cold run the first page that needs latency trains what is missing, once.
"""
from __future__ import annotations

from pathlib import Path

import torch

from lab import bench, data, distill, distill_runs, lora_runs, quantize, scratch, train

FULL = "full"                    # week 1's fine-tuned model
LORA = "lora-merged"             # week 2's adapter folded into its base: the same arithmetic as FULL in fp32
REFERENCE = f"{FULL}/{quantize.REFERENCE}"
STUDENT_ROUTES = (quantize.REFERENCE, "onnx-int8-qint8")
STUDENTS = (distill_runs.LABELS_ONLY, *distill_runs.SWEEP)

# The smoke profile must execute pages in seconds: a few rounds, one retry, and no waiting for quiet.
SMOKE_QUIET_WAIT_S = 0.0


def variant(model: str, route: str) -> str:
    """'full/onnx-int8-qint8': a model through a runtime, the key of every latency row."""
    return f"{model}/{route}"


def full_model(profile) -> dict[str, tuple[object, object, tuple[str, ...]]]:
    """{FULL: (model, tokenizer, routes)}: week 1's model through every week-4 route (benchmarks/inference.py)."""
    full, tokenizer = train.finetuned(profile)
    return {FULL: (full.cpu().eval(), tokenizer, tuple(quantize.ROUTES))}


def _models(profile) -> dict[str, tuple[object, object, tuple[str, ...]]]:
    """name -> (model, tokenizer, routes). Asks for the weeks' records first, so a missing one is made (and its
    models trained) by its own measurement, not a second time here."""
    from lab.measure import measured
    device = train.default_device()
    measured("week2/lora", lora_runs.record, profile=profile, device=device)
    measured("week5/distill", distill_runs.record, profile=profile, device=device)
    lora_model, lora_tok = lora_runs.adapted(profile)
    out = {**full_model(profile),
           LORA: (lora_model.merge_and_unload().cpu().eval(), lora_tok, (quantize.REFERENCE,))}
    logits = distill.teacher_logits(profile, device=device)
    for settings in STUDENTS:
        student, student_tok = distill_runs.student(profile, settings, device=device, logits=logits)
        out[distill_runs.variant(settings)] = (student.cpu().eval(), student_tok, STUDENT_ROUTES)
    return out


def record(profile, run_on: str = "cpu") -> dict:
    """Every variant's latency on `run_on`, measured in one interleaved run on the same real test batches:
    time_models of every model the course compares."""
    return time_models(_models(profile), profile, run_on)


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
    batches = bench.sample_batches(enc, profile.bench_batch_sizes, seed=profile.seed)
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
        smoke = profile.name == "smoke"
        reference = REFERENCE if REFERENCE in runs else next(iter(runs))
        result = bench.measure(runs, batches, reference=reference, rounds=profile.bench_repeats, device=run_on,
                               threads=threads, seed=profile.seed,
                               quiet_wait_s=SMOKE_QUIET_WAIT_S if smoke else bench.QUIET_WAIT_S)
    for row in result["rows"]:
        row["model"], row["route"] = row["variant"].split("/", 1)
    out = {"device": run_on, "threads": threads, "models": sorted(built), "skipped": skipped, **result}
    return out


# ---------------------------------------------------------------- reading the record

def lookup(rec: dict) -> dict[str, dict[int, dict]]:
    """variant -> {batch: latency row} of a latency record."""
    return bench.by_variant(rec["result"]["rows"])


def route_rows(rec: dict, model: str = FULL) -> list[dict]:
    """One model's rows in the shape week 4's tables read (a "route" per row)."""
    return [r for r in rec["result"]["rows"] if r["model"] == model]


def _hardware(rec: dict) -> str:
    from lab import measure
    return measure.hardware_key(rec["result"]["device"], rec["provenance"])


def for_hardware(records: list[dict], other: dict) -> dict | None:
    """The latency record measured on the same hardware as `other` (a record of another measurement), or None."""
    return next((r for r in records if _hardware(r) == _hardware(other)), None)


def with_latency(route_records: list[dict], latency_records: list[dict]) -> list[dict]:
    """Week 4's route records, each with "latency" (its full model's rows) taken from the latency record of the
    same hardware; a hardware without one keeps no latency rows."""
    out = []
    for rec in route_records:
        lat = for_hardware(latency_records, rec)
        out.append({**rec, "result": {**rec["result"], "latency": route_rows(lat) if lat else []}})
    return out
