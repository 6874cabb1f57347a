"""Week 6: every variant the course built, side by side on accuracy, latency and size, and what to ship where.

    extra = measured("week6/variants", week6.variants_record, profile=profile, device="cpu", **best_student)
    rows = capstone.variants(week4, extra, latency_rec)    # one row per variant, this hardware
    capstone.pareto(rows, batch=1)                          # the variants nothing beats on both speed and accuracy
    capstone.recommend(rows, deployment)                    # per lab.decide.DEPLOYMENTS

Accuracy and size come from the weeks' own records (week 4's routes for the full model and its int8 versions);
what no week measured is measured here, through week 4's harness (lab.quantize.compare_routes): the merged LoRA
model and the distilled student, in PyTorch fp32, and the student in ONNX Runtime int8. Every latency comes from
the one latency record (lab.recipes.latency), so a variant shows the same speed here as on every other page. A variant is
faster than another only when their p10-p90 ranges do not overlap (lab.bench.distinguishable).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from lab import bench, decide, distill, quantize
from lab.record import env

INT8 = quantize.INT8            # week 4's ONNX Runtime int8 route with int8 weights
ACCURACY_SLACK = 0.01           # a variant within one point of the most accurate counts as accurate enough


@dataclass(frozen=True)
class Variant:
    """One row of week 6's table: its name on the page, the model and route it runs (as lab.recipes.latency names them:
    "full", "lora-merged", or "student", week 5's best), and the week whose record holds its accuracy and size."""
    name: str
    model: str
    route: str
    week: str


VARIANTS = (Variant("full fine-tune, fp32", "full", quantize.REFERENCE, "week 4"),
            Variant("full fine-tune, PyTorch int8", "full", "pytorch-int8", "week 4"),
            Variant("full fine-tune, ONNX Runtime int8", "full", INT8, "week 4"),
            Variant("LoRA, merged, fp32", "lora-merged", quantize.REFERENCE, "week 6"),
            Variant("distilled student, fp32", "student", quantize.REFERENCE, "week 6"),
            Variant("distilled student, ONNX Runtime int8", "student", INT8, "week 6"))


def _row(name: str, result: dict, route: str, source: str, latency: dict | None) -> dict | None:
    """A variant from a compare_routes result: accuracy and size of `route`; `latency` its {batch: row}."""
    r = next((x for x in result["routes"] if x["route"] == route and x["status"] == "ok"), None)
    if r is None or latency is None:
        return None
    return {"variant": name, "accuracy": r["accuracy"], "size_mb": r["size_mb"], "latency": latency, "source": source}


def latency_keys(extra: dict) -> dict[str, str]:
    """variant name -> its key in the latency record ('full/onnx-int8-qint8'); the student is week 5's best, as
    `extra` (this week's record) names it."""
    student = distill.variant(distill.Settings(extra["config"]["temperature"], extra["config"]["alpha"]))
    return {v.name: f'{student if v.model == "student" else v.model}/{v.route}' for v in VARIANTS}


def variants(week4: dict, extra: dict, latency_rec: dict) -> list[dict]:
    """Every variant measured on one machine: accuracy and size from week 4's record (the full model's routes) and
    `extra` (this week's record: the merged LoRA model and the student), latency from `latency_rec` (lab.recipes.latency's
    record of the same machine)."""
    # the result holding each model's accuracy and size: week 4's routes, or this week's record
    results = {"full": week4["result"], "lora-merged": extra["result"]["lora_merged"],
               "student": extra["result"]["student"]}
    lat = bench.by_variant(latency_rec["result"]["rows"])
    keys = latency_keys(extra)
    rows = [_row(v.name, results[v.model], v.route, v.week, lat.get(keys[v.name])) for v in VARIANTS]
    return [r for r in rows if r is not None]


def beats(a: dict, b: dict, batch: int) -> bool:
    """Variant a beats b at `batch` when it is at least as accurate and not distinguishably slower, and better in
    one of the two: more accurate, or faster beyond the noise (p10-p90 ranges apart). Two variants whose ranges
    overlap are tied on speed, whatever their medians say."""
    la, lb = a["latency"][batch], b["latency"][batch]
    faster = bench.distinguishable(la, lb) and la["median_ms"] < lb["median_ms"]
    slower = bench.distinguishable(la, lb) and la["median_ms"] > lb["median_ms"]
    return not slower and a["accuracy"] >= b["accuracy"] and (faster or a["accuracy"] > b["accuracy"])


def pareto(rows: list[dict], batch: int) -> list[str]:
    """Variants no other variant beats (see beats)."""
    return [r["variant"] for r in rows if not any(beats(o, r, batch) for o in rows if o is not r)]


def recommend(rows: list[dict], dep: decide.Deployment) -> dict:
    """The fastest variant at the deployment's batch size among those that fit its size budget and are within
    ACCURACY_SLACK of the most accurate of them; ties (p10-p90 ranges that overlap the fastest's) go to the more
    accurate. When none fits, the smallest.
    "Fits" is lab.decide's rule: the model takes at most SIZE_SHARE of what the deployment budgets."""
    fits = [r for r in rows if dep.budget_mb is None or r["size_mb"] <= decide.SIZE_SHARE * dep.budget_mb]
    pool = fits or [min(rows, key=lambda r: r["size_mb"])]
    best_acc = max(r["accuracy"] for r in pool)
    good = [r for r in pool if r["accuracy"] >= best_acc - ACCURACY_SLACK and dep.batch in r["latency"]]
    fastest = min(good, key=lambda r: r["latency"][dep.batch]["median_ms"])
    # variants whose range overlaps the fastest's are as fast, as far as this machine can tell: the most accurate
    tied = [r for r in good if not bench.distinguishable(r["latency"][dep.batch], fastest["latency"][dep.batch])]
    pick = max(tied, key=lambda r: (r["accuracy"], -r["latency"][dep.batch]["median_ms"]))
    return {"deployment": dep.name, "batch": dep.batch, "budget": dep.budget, "ship": pick["variant"],
            "accuracy": pick["accuracy"], "latency": pick["latency"][dep.batch],
            "size_mb": pick["size_mb"], "fit the budget": f"{len(fits)} of {len(rows)}"}


def picks(rows: list[dict], latency_rec: dict) -> list[dict]:
    """recommend() for every deployment (lab.decide.DEPLOYMENTS) that the latency record's device speaks for: the
    CPU ones from a CPU record, the Kaggle GPU from a CUDA record, whose GPU memory is then its budget. Each answer
    names the hardware it was measured on. `rows` are variants() built on that same record."""
    device, label = latency_rec["result"]["device"], env.device_label(latency_rec["provenance"])
    return [{**recommend(rows, replace(dep, budget_mb=decide.budget_of(dep, latency_rec))), "measured on": label}
            for dep in decide.DEPLOYMENTS if dep.device == device]
