"""Week 6: every variant the course built, side by side on accuracy, latency and size, and what to ship where.

    extra = measured("week6/variants", capstone.record, profile=profile, device="cpu", **best_student)
    rows = capstone.variants(week4, extra, latency_rec)    # one row per variant, this hardware
    capstone.pareto(rows, batch=1)                          # the variants nothing beats on both speed and accuracy
    capstone.recommend(rows, deployment)                    # per lab.decide.DEPLOYMENTS

Accuracy and size come from the weeks' own records (week 4's routes for the full model and its int8 versions);
what no week measured is measured here, through week 4's harness (lab.quantize.compare_routes): the merged LoRA
model and the distilled student, in PyTorch fp32, and the student in ONNX Runtime int8. Every latency comes from
the one latency record (lab.latency), so a variant shows the same speed here as on every other page. A variant is
faster than another only when their p10-p90 ranges do not overlap (lab.bench.distinguishable).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from lab import bench, decide, distill, distill_runs, env, lora_runs, quantize

INT8 = "onnx-int8-qint8"        # week 4's ONNX Runtime int8 route with int8 weights
ACCURACY_SLACK = 0.01           # a variant within one point of the most accurate counts as accurate enough


@dataclass(frozen=True)
class Variant:
    """One row of week 6's table: its name on the page, the model and route it runs (as lab.latency names them:
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


def record(profile, temperature: float, alpha: float) -> dict:
    """Accuracy and size of what the earlier weeks did not measure (no latency: lab.latency). The student is week 5's
    best (its settings are this record's config, so a different best student re-measures)."""
    lora_model, tokenizer = lora_runs.adapted(profile)
    merged = lora_model.merge_and_unload().cpu().eval()
    student, student_tok = distill_runs.student(profile, distill.Settings(temperature, alpha))
    return {"lora_merged": quantize.compare_routes(merged, tokenizer, profile, "cpu", [quantize.REFERENCE]),
            "student": quantize.compare_routes(student.cpu().eval(), student_tok, profile, "cpu",
                                               [quantize.REFERENCE, INT8])}


def _row(name: str, result: dict, route: str, source: str, latency: dict | None) -> dict | None:
    """A variant from a compare_routes result: accuracy and size of `route`; `latency` its {batch: row}."""
    r = next((x for x in result["routes"] if x["route"] == route and x["status"] == "ok"), None)
    if r is None or latency is None:
        return None
    return {"variant": name, "accuracy": r["accuracy"], "size_mb": r["size_mb"], "latency": latency, "source": source}


def latency_keys(extra: dict) -> dict[str, str]:
    """variant name -> its key in the latency record ('full/onnx-int8-qint8'); the student is week 5's best, as
    `extra` (this week's record) names it."""
    student = distill_runs.variant(distill.Settings(extra["config"]["temperature"], extra["config"]["alpha"]))
    return {v.name: f'{student if v.model == "student" else v.model}/{v.route}' for v in VARIANTS}


def variants(week4: dict, extra: dict, latency_rec: dict) -> list[dict]:
    """Every variant measured on one machine: accuracy and size from week 4's record (the full model's routes) and
    `extra` (this week's record: the merged LoRA model and the student), latency from `latency_rec` (lab.latency's
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
            "accuracy": pick["accuracy"], "latency (ms, p10–p90)": bench.ms(pick["latency"][dep.batch]),
            "size_mb": pick["size_mb"], "fit the budget": f"{len(fits)} of {len(rows)}"}


def picks(rows: list[dict], latency_rec: dict) -> list[dict]:
    """recommend() for every deployment (lab.decide.DEPLOYMENTS) that the latency record's device speaks for: the
    CPU ones from a CPU record, the Kaggle GPU from a CUDA record, whose GPU memory is then its budget. Each answer
    names the hardware it was measured on. `rows` are variants() built on that same record."""
    device, label = latency_rec["result"]["device"], env.device_label(latency_rec["provenance"])
    return [{**recommend(rows, replace(dep, budget_mb=decide.budget_of(dep, latency_rec))), "measured on": label}
            for dep in decide.DEPLOYMENTS if dep.device == device]


# ---------------------------------------------------------------- display

def table(rows: list[dict], batches) -> list[dict]:
    front = {b: set(pareto(rows, b)) for b in batches}
    return [{"variant": r["variant"], "test accuracy": f'{r["accuracy"]:.3f}', "size (MB)": f'{r["size_mb"]:.1f}',
             **{f"batch {b} ms (p10–p90)": bench.ms(r["latency"][b]) for b in batches},
             "Pareto front": ", ".join(f"batch {b}" for b in batches if r["variant"] in front[b]) or "no",
             "measured in": r["source"]} for r in rows]


def recommendation_rows(picks: list[dict]) -> list[dict]:
    """recommend()'s answers as a table, headers with their units."""
    return [{"deployment": p["deployment"], "measured on": p.get("measured on", ""), "batch": p["batch"],
             "budget": p["budget"], "ship": p["ship"],
             "test accuracy": f'{p["accuracy"]:.3f}', "latency (ms, p10–p90)": p["latency (ms, p10–p90)"],
             "size (MB)": f'{p["size_mb"]:.1f}', "fit the budget": p["fit the budget"]} for p in picks]


def plot(rows: list[dict], batch: int, title: str):
    """Accuracy against latency at `batch`, marker area proportional to the size on disk; the front joined."""
    import matplotlib.pyplot as plt
    from lab import report
    fig, ax = plt.subplots(figsize=(report.FIG_WIDTH_IN, 4.6))
    front = set(pareto(rows, batch))
    biggest = max(r["size_mb"] for r in rows)
    for i, r in enumerate(rows):
        x, y = r["latency"][batch]["median_ms"], r["accuracy"]
        ax.scatter(x, y, s=40 + 900 * r["size_mb"] / biggest, color=f"C{i}", alpha=0.6,
                   edgecolor="black" if r["variant"] in front else "none", label=f'{r["variant"]} ({r["size_mb"]:.0f} MB)')
    on = sorted((r for r in rows if r["variant"] in front), key=lambda r: r["latency"][batch]["median_ms"])
    ax.plot([r["latency"][batch]["median_ms"] for r in on], [r["accuracy"] for r in on], "k--", lw=1,
            label="Pareto front")
    ms = [r["latency"][batch]["median_ms"] for r in rows]
    report.ms_log_x(ax, min(ms) / 1.15, max(ms) * 1.15)    # a margin: the largest discs stay inside the axes
    ax.margins(y=0.12)
    report.style(ax, title, f"latency at batch {batch} (ms, median, log scale)", "test accuracy")
    # under the axes, not over them (the small fast variants sit low, where a legend would go) nor beside them
    # (seven long labels there made the figure wider than the page's column)
    legend = report.legend_below(ax, ncols=2, title="marker area: size on disk", title_fontsize=8)
    for handle in legend.legend_handles[:len(rows)]:
        handle.set_sizes([40])               # one size in the legend: the plot's markers carry the sizes
    fig.tight_layout()
    return fig


def gpu_sentence(gpu_latency: dict | None, gpu_rows: list[dict], extra: dict) -> str:
    """What the page says about the Kaggle GPU row: where it came from, the variants it could not time and why (the
    GPU record's own reasons), or why the row is missing."""
    if gpu_latency is None:
        return ("The Kaggle GPU row needs a GPU's latency record, which this site does not have yet. On a GPU the "
                "answer may well differ: in the story this course comes from (week 4, *Where this course comes "
                "from*), ONNX Runtime ran the int8 model's quantized ops on the CPU. Run this page on a GPU to fill "
                "the row.")
    label = env.device_label(gpu_latency["provenance"])
    timed = {r["variant"] for r in gpu_rows}
    reasons = {f'{s["model"]}/{s["route"]}': s["reason"] for s in gpu_latency["result"].get("skipped", [])}
    keys = latency_keys(extra)
    missing = [f"{v.name} ({reasons.get(keys[v.name], 'no timing of it in the record')})"
               for v in VARIANTS if v.name not in timed]
    return (f"The Kaggle GPU row comes from the latency record of **{label}**: the same variants and the same rule, "
            f"every latency timed on the GPU, and the GPU's memory as the budget. "
            + (f"Not timed there, so not candidates: {'; '.join(missing)}. " if missing else "")
            + "Read its pick beside week 4's placement check: where ONNX Runtime ran the quantized ops decides "
              "whether int8 can win on a GPU.")
