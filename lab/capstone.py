"""Week 6: every variant the course built, side by side on accuracy, latency and size, and what to ship where.

    extra = measured("week6/variants", week6.variants_record, profile=profile, device="cpu", **best_student)
    rows = capstone.variants(week4, extra, latency_rec)    # one row per variant, this hardware
    capstone.pareto(rows, batch=1)                          # the variants nothing beats on both speed and accuracy
    capstone.recommend(rows, deployment)                    # per lab.decide.DEPLOYMENTS

Accuracy and size come from the weeks' own records (week 4's routes for the full model and its int8 versions);
what no week measured is measured here, through week 4's harness (lab.quantize.compare_routes): the merged LoRA
model and the distilled student, in PyTorch fp32, and the student in ONNX Runtime int8. Every latency comes from
the one latency record (lab.recipes.latency), so a variant shows the same speed here as on every other page. A variant is
faster than another only when their p10-p90 ranges do not overlap (lab.bench.distinguishable), and more accurate
only when a paired test on their predictions over the same test snippets says so (accuracy_test: McNemar's exact
test on the snippets one got right and the other wrong, at ALPHA).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from lab import bench, decide, distill, quantize
from lab.record import env

INT8 = quantize.INT8            # week 4's ONNX Runtime int8 route with int8 weights
ACCURACY_SLACK = 0.01           # a variant within one point of the most accurate counts as accurate enough
# The paired test's level. 0.05 is the convention a reader knows, and the test is two-sided and exact, so a pair of
# variants is called apart by chance at most 1 time in 20. On 1,276 snippets it tells apart a 1-point difference only
# when the two variants disagree on few snippets (13 one way, none the other: p = 0.0002), and never a 3-snippet one
# (p >= 0.25): a difference smaller than the test can see reads "not distinguishable here".
ALPHA = 0.05


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
    # "correct" (per test snippet, '0'/'1') is what the paired accuracy test reads; a record without it (older, or
    # from a GPU run) gives a row without it, whose accuracy then ties with every other (accuracy_test)
    return {"variant": name, "accuracy": r["accuracy"], "size_mb": r["size_mb"], "latency": latency, "source": source,
            **({"correct": r["correct"]} if r.get("correct") else {})}


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


def accuracy_test(a: dict, b: dict) -> dict:
    """McNemar's exact test of a's accuracy against b's on the same test snippets.

    Each row's "correct" holds '0'/'1' per test snippet, in test-set order. Of the
    snippets exactly one of the two got right, is the split (a_only against b_only)
    more uneven than a fair coin gives, two-sided, at ALPHA? Snippets both got right,
    or both wrong, say nothing about which is better and are left out.

    Returns tested, distinguishable, p, a_only, b_only, n, and points (a's accuracy
    minus b's). A row without "correct" (an older record, or one from a GPU run)
    cannot be tested: tested is False and the two count as not distinguishable, so
    a measured difference alone never decides the front or a pick."""
    points = 100 * (a["accuracy"] - b["accuracy"])
    if not (a.get("correct") and b.get("correct")):
        return {"tested": False, "distinguishable": False, "p": None,
                "a_only": None, "b_only": None, "n": None, "points": points}
    ca, cb = a["correct"], b["correct"]
    if len(ca) != len(cb) or set(ca + cb) - {"0", "1"}:
        raise ValueError(
            f"{a.get('variant', 'a')!r} has {len(ca)} per-snippet results and "
            f"{b.get('variant', 'b')!r} {len(cb)}: a paired test needs one '0'/'1' "
            f"per snippet of the same test set for both")
    from scipy.stats import binomtest
    a_only = sum(x == "1" and y == "0" for x, y in zip(ca, cb))
    b_only = sum(x == "0" and y == "1" for x, y in zip(ca, cb))
    discordant = a_only + b_only
    p = binomtest(a_only, discordant, 0.5).pvalue if discordant else 1.0
    return {"tested": True, "distinguishable": p < ALPHA, "p": float(p),
            "a_only": a_only, "b_only": b_only, "n": len(ca),
            "points": 100 * (a_only - b_only) / len(ca)}


def more_accurate(a: dict, b: dict) -> bool:
    """a is more accurate than b beyond the noise (accuracy_test)."""
    t = accuracy_test(a, b)
    return t["distinguishable"] and t["points"] > 0


def faster(a: dict, b: dict, batch: int) -> bool:
    """a is faster than b at `batch` beyond the noise: p10-p90 ranges apart."""
    la, lb = a["latency"][batch], b["latency"][batch]
    return bench.distinguishable(la, lb) and la["median_ms"] < lb["median_ms"]


def beats(a: dict, b: dict, batch: int) -> bool:
    """Variant a beats b at `batch` when it is neither slower nor less accurate
    beyond the noise, and better in one of the two: faster (p10-p90 ranges apart)
    or more accurate (McNemar's paired test, accuracy_test). Variants whose ranges
    overlap tie on speed, and variants the paired test cannot tell apart tie on
    accuracy, whatever their medians and accuracies say."""
    return (not faster(b, a, batch) and not more_accurate(b, a)
            and (faster(a, b, batch) or more_accurate(a, b)))


def pareto(rows: list[dict], batch: int) -> list[str]:
    """Variants no other variant beats (see beats). Ties make beating intransitive,
    so three variants could in principle beat each other in a ring and leave the
    front empty: the page checks that it is not."""
    return [r["variant"] for r in rows
            if not any(beats(o, r, batch) for o in rows if o is not r)]


def accurate_enough(row: dict, best: dict) -> bool:
    """Within ACCURACY_SLACK of `best`, or not distinguishable from it (the noise
    rule can only widen the slack)."""
    return (row["accuracy"] >= best["accuracy"] - ACCURACY_SLACK
            or not more_accurate(best, row))


def recommend(rows: list[dict], dep: decide.Deployment) -> dict:
    """What to ship for `dep`. Among the variants that fit its size budget, those
    accurate enough (within ACCURACY_SLACK of the most accurate, or not
    distinguishable from it); of them, the ones no other beats at the deployment's
    batch size; of those, the fastest. Ties (ranges that overlap the fastest's) go
    to the more accurate. When none fits, the smallest.
    "Fits" is lab.decide's rule: at most SIZE_SHARE of what the deployment budgets."""
    b = dep.batch
    cap = None if dep.budget_mb is None else decide.SIZE_SHARE * dep.budget_mb
    fits = [r for r in rows if cap is None or r["size_mb"] <= cap]
    pool = [r for r in fits or [min(rows, key=lambda r: r["size_mb"])]
            if b in r["latency"]]
    best = max(pool, key=lambda r: r["accuracy"])
    good = [r for r in pool if accurate_enough(r, best)]
    front = set(pareto(good, b))
    candidates = [r for r in good if r["variant"] in front] or good   # a ring: all
    fastest = min(candidates, key=lambda r: r["latency"][b]["median_ms"])
    # variants whose range overlaps the fastest's are as fast, as far as this
    # machine can tell: of them, the most accurate
    tied = [r for r in candidates
            if not bench.distinguishable(r["latency"][b], fastest["latency"][b])]
    pick = max(tied, key=lambda r: (r["accuracy"], -r["latency"][b]["median_ms"]))
    return {"deployment": dep.name, "batch": b, "budget": dep.budget,
            "ship": pick["variant"], "accuracy": pick["accuracy"],
            "latency": pick["latency"][b], "size_mb": pick["size_mb"],
            "fit the budget": f"{len(fits)} of {len(rows)}"}


def best_student(result: dict) -> distill.Settings:
    """Week 5's sweep's best distilled student by VALIDATION accuracy (ties: the first), from week 5's record.
    Picking on the test set would make the test accuracy it then reports a biased estimate; lab.distill.best
    (training code, left as it is) picks by test accuracy, and the pages use this instead."""
    distilled = [r for r in result["rows"] if r.get("settings", {}).get("alpha", 0) > 0]
    unscored = [r["model"] for r in distilled if "val_accuracy" not in r]
    if unscored:
        raise ValueError(f"week 5's record has no validation accuracy for {', '.join(unscored)}: it predates the "
                         f"validation pick; re-measure week5/distill (python -m lab status lists it as stale)")
    return distill.Settings(**max(distilled, key=lambda r: r["val_accuracy"])["settings"])


def picks(rows: list[dict], latency_rec: dict) -> list[dict]:
    """recommend() for every deployment (lab.decide.DEPLOYMENTS) that the latency record's device speaks for: the
    CPU ones from a CPU record, the Kaggle GPU from a CUDA record, whose GPU memory is then its budget. Each answer
    names the hardware it was measured on. `rows` are variants() built on that same record."""
    device, label = latency_rec["result"]["device"], env.device_label(latency_rec["provenance"])
    return [{**recommend(rows, replace(dep, budget_mb=decide.budget_of(dep, latency_rec))), "measured on": label}
            for dep in decide.DEPLOYMENTS if dep.device == device]
