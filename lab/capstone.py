"""Week 6: every variant the course built, side by side on accuracy, latency and size, and what to ship where.

    extra = measured("week6/variants", capstone.record, profile=profile, device="cpu", **best_student)
    rows = capstone.variants(week2, week4, week5, extra)    # one row per variant, this hardware
    capstone.pareto(rows, batch=1)                           # the variants nothing beats on both speed and accuracy
    capstone.recommend(rows, deployment)                     # per lab.decide.DEPLOYMENTS

Most numbers come from the weeks' own records (week 4's routes for the full model and its int8 versions). What
no week measured is measured here, through week 4's harness (lab.quantize.compare_routes): the merged LoRA model
and the distilled student, each in PyTorch fp32, and the student in ONNX Runtime int8.
"""
from __future__ import annotations

from lab import decide, distill, distill_runs, lora_runs, quantize

INT8 = "onnx-int8-qint8"        # week 4's ONNX Runtime int8 route with int8 weights
ACCURACY_SLACK = 0.01           # a variant within one point of the most accurate counts as accurate enough


def record(profile, temperature: float, alpha: float) -> dict:
    """What the earlier weeks did not measure. The student is week 5's best (its settings are this record's config,
    so a different best student re-measures)."""
    lora_model, tokenizer = lora_runs.adapted(profile)
    merged = lora_model.merge_and_unload().cpu().eval()
    student, student_tok = distill_runs.student(profile, distill.Settings(temperature, alpha))
    return {"lora_merged": quantize.compare_routes(merged, tokenizer, profile, "cpu", [quantize.REFERENCE]),
            "student": quantize.compare_routes(student.cpu().eval(), student_tok, profile, "cpu",
                                               [quantize.REFERENCE, INT8])}


def _row(name: str, result: dict, route: str, source: str) -> dict | None:
    """A variant from a compare_routes result: accuracy and size of `route`, and its latency per batch size."""
    r = next((x for x in result["routes"] if x["route"] == route and x["status"] == "ok"), None)
    if r is None:
        return None
    latency = {x["batch"]: x for x in result["latency"] if x["route"] == route}
    return {"variant": name, "accuracy": r["accuracy"], "size_mb": r["size_mb"], "latency": latency, "source": source}


def variants(week4: dict, extra: dict) -> list[dict]:
    """Every variant measured on one machine: week 4's record for the full model's routes, `extra` (this week's
    record of the same machine) for the merged LoRA model and the student."""
    w4, ex = week4["result"], extra["result"]
    rows = [_row("full fine-tune, fp32", w4, quantize.REFERENCE, "week 4"),
            _row("full fine-tune, PyTorch int8", w4, "pytorch-int8", "week 4"),
            _row("full fine-tune, ONNX Runtime int8", w4, INT8, "week 4"),
            _row("LoRA, merged, fp32", ex["lora_merged"], quantize.REFERENCE, "week 6"),
            _row("distilled student, fp32", ex["student"], quantize.REFERENCE, "week 6"),
            _row("distilled student, ONNX Runtime int8", ex["student"], INT8, "week 6")]
    return [r for r in rows if r is not None]


def pareto(rows: list[dict], batch: int) -> list[str]:
    """Variants no other variant beats on both: at least as fast at `batch` and at least as accurate, better in one."""
    def beats(a, b):
        la, lb = a["latency"][batch]["median_ms"], b["latency"][batch]["median_ms"]
        return la <= lb and a["accuracy"] >= b["accuracy"] and (la < lb or a["accuracy"] > b["accuracy"])
    return [r["variant"] for r in rows if not any(beats(o, r) for o in rows if o is not r)]


def recommend(rows: list[dict], dep: decide.Deployment) -> dict:
    """The fastest variant at the deployment's batch size among those that fit its size budget and are within
    ACCURACY_SLACK of the most accurate of them; ties go to the more accurate. When none fits, the smallest.
    "Fits" is lab.decide's rule: the model takes at most SIZE_SHARE of what the deployment budgets."""
    fits = [r for r in rows if dep.budget_mb is None or r["size_mb"] <= decide.SIZE_SHARE * dep.budget_mb]
    pool = fits or [min(rows, key=lambda r: r["size_mb"])]
    best_acc = max(r["accuracy"] for r in pool)
    good = [r for r in pool if r["accuracy"] >= best_acc - ACCURACY_SLACK and dep.batch in r["latency"]]
    pick = min(good, key=lambda r: (r["latency"][dep.batch]["median_ms"], -r["accuracy"]))
    return {"deployment": dep.name, "batch": dep.batch, "budget": dep.budget, "ship": pick["variant"],
            "accuracy": pick["accuracy"], "latency_ms": pick["latency"][dep.batch]["median_ms"],
            "size_mb": pick["size_mb"], "fit the budget": f"{len(fits)} of {len(rows)}"}


# ---------------------------------------------------------------- display

def table(rows: list[dict], batches) -> list[dict]:
    front = {b: set(pareto(rows, b)) for b in batches}
    return [{"variant": r["variant"], "test accuracy": f'{r["accuracy"]:.3f}', "size (MB)": f'{r["size_mb"]:.1f}',
             **{f"batch {b} ms (p10–p90)": (f'{r["latency"][b]["median_ms"]:.2f} ({r["latency"][b]["p10_ms"]:.2f}–'
                                            f'{r["latency"][b]["p90_ms"]:.2f})') for b in batches},
             "Pareto front": ", ".join(f"batch {b}" for b in batches if r["variant"] in front[b]) or "no",
             "measured in": r["source"]} for r in rows]


def recommendation_rows(picks: list[dict]) -> list[dict]:
    """recommend()'s answers as a table, headers with their units."""
    return [{"deployment": p["deployment"], "batch": p["batch"], "budget": p["budget"], "ship": p["ship"],
             "test accuracy": f'{p["accuracy"]:.3f}', "latency (ms)": f'{p["latency_ms"]:.2f}',
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
