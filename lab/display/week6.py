"""What week 6 shows: the table of variants with its Pareto front, the recommendations, the plot, the GPU row.

    week6.table(rows, batches); week6.recommendation_rows(picks); week6.plot(rows, batch=1, title=...)
"""
from __future__ import annotations

from lab import capstone
from lab.display import latency, report
from lab.record import env


UNTESTED_MARK = " (untested)"     # an accuracy the paired test cannot read: no per-snippet results in its record


def accuracy_cell(row: dict) -> str:
    """'0.831', marked when the row has no per-snippet results (its accuracy then ties with every other)."""
    return f'{row["accuracy"]:.3f}' + ("" if row.get("correct") else UNTESTED_MARK)


def untested_note(rows: list[dict]) -> str:
    """A sentence naming the variants whose accuracy the paired test could not read, or saying that it read every
    one (never empty: an empty inline value would print as code)."""
    names = [r["variant"] for r in rows if not r.get("correct")]
    if not names:
        return "Every variant's record holds its per-snippet predictions, so the paired test compared every pair."
    return (f"Marked {UNTESTED_MARK.strip()}: {', '.join(names)}. Their records hold no per-snippet predictions "
            f"(an older record, or one from a GPU run), so the paired test cannot compare them, and the rule "
            f"counts their accuracy as tied with every other variant's.")


# The week whose model each variant is, by capstone.Variant.model. A variant's accuracy and size come from week 4's
# record (the full model's routes) or this week's (capstone.Variant.week), which the page's prose says; the table
# names where the model was trained, which "measured in: week 6" hid for week 2's adapter and week 5's student.
TRAINED_IN = {"full": "week 1", "lora-merged": "week 2 (LoRA)", "student": "week 5"}


def trained_in(variant: str) -> str:
    model = next((v.model for v in capstone.VARIANTS if v.name == variant), None)
    return TRAINED_IN.get(model, "")


def table(rows: list[dict], batches) -> list[dict]:
    front = {b: set(capstone.pareto(rows, b)) for b in batches}
    return [{"variant": r["variant"], "test accuracy": accuracy_cell(r), "size (MB)": f'{r["size_mb"]:.1f}',
             **{f"batch {b} ms (p10–p90)": latency.ms(r["latency"][b]) for b in batches},
             "Pareto front": ", ".join(f"batch {b}" for b in batches if r["variant"] in front[b]) or "no",
             "trained in": trained_in(r["variant"])} for r in rows]


def recommendation_rows(picks: list[dict]) -> list[dict]:
    """recommend()'s answers as a table, headers with their units."""
    return [{"deployment": p["deployment"], "measured on": p.get("measured on", ""), "batch": p["batch"],
             "budget": p["budget"], "ship": p["ship"],
             "test accuracy": f'{p["accuracy"]:.3f}', "latency (ms, p10–p90)": latency.ms(p["latency"]),
             "size (MB)": f'{p["size_mb"]:.1f}', "fit the budget": p["fit the budget"]} for p in picks]


def accuracy_interval(accuracy: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy on `n` test snippets: the binomial noise of the test set alone,
    which the plot draws so that two variants a few snippets apart are seen to overlap."""
    from scipy.stats import binomtest
    ci = binomtest(round(accuracy * n), n).proportion_ci(confidence_level=level, method="wilson")
    return ci.low, ci.high


def plot(rows: list[dict], batch: int, title: str, n_test: int | None = None):
    """Accuracy against latency at `batch`, marker area proportional to the size on disk; the front joined. Error
    bars: the p10-p90 latency range across, and the 95% Wilson interval of the accuracy up and down, on the row's
    own per-snippet results where it has them, else on `n_test` snippets (none drawn without either)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(report.PHONE_FIG_WIDTH_IN, 6.4))
    front = set(capstone.pareto(rows, batch))
    biggest = max(r["size_mb"] for r in rows)
    for i, r in enumerate(rows):
        lat = r["latency"][batch]
        x, y = lat["median_ms"], r["accuracy"]
        n = len(r["correct"]) if r.get("correct") else n_test
        lo, hi = accuracy_interval(y, n) if n else (y, y)
        ax.errorbar(x, y, xerr=[[x - lat["p10_ms"]], [lat["p90_ms"] - x]], yerr=[[y - lo], [hi - y]],
                    fmt="none", ecolor="0.2", elinewidth=1, capsize=2, zorder=3)    # over the disc, not in it
        ax.scatter(x, y, s=40 + 900 * r["size_mb"] / biggest, color=f"C{i}", alpha=0.6,
                   edgecolor="black" if r["variant"] in front else "none", label=f'{r["variant"]} ({r["size_mb"]:.0f} MB)')
    on = sorted((r for r in rows if r["variant"] in front), key=lambda r: r["latency"][batch]["median_ms"])
    ax.plot([r["latency"][batch]["median_ms"] for r in on], [r["accuracy"] for r in on], "k--", lw=1,
            label="Pareto front")
    ms = [r["latency"][batch][k] for r in rows for k in ("p10_ms", "p90_ms")]
    report.ms_log_x(ax, min(ms) / 1.15, max(ms) * 1.15)    # a margin: the largest discs stay inside the axes
    ax.margins(y=0.12)
    report.style(ax, title, f"latency at batch {batch} (ms, median, log scale)", "test accuracy")
    # under the axes, not over them (the small fast variants sit low, where a legend would go) nor beside them
    # (seven long labels there made the figure wider than the page's column)
    # one column: at a phone's font size two columns of "distilled student, ONNX Runtime int8 (16 MB)" are wider
    # than the figure
    legend = report.legend_below(ax, ncols=1, y=-0.22, fontsize=report.PHONE_FONT_PT,
                                 title="marker area: size on disk\nbars: latency p10–p90, accuracy 95% interval",
                                 title_fontsize=report.PHONE_FONT_PT)
    for handle in legend.legend_handles[:len(rows)]:
        handle.set_sizes([40])               # one size in the legend: the plot's markers carry the sizes
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig


def gpu_sentence(gpu_latency: dict | None, gpu_rows: list[dict], extra: dict) -> str:
    """What the page says about the Kaggle GPU row: where it came from, the variants it could not time and why (the
    GPU record's own reasons), or why the row is missing."""
    if gpu_latency is None:
        return ("The table has no row for the Kaggle GPU deployment: that row needs a GPU's latency record, which "
                "this site does not have yet. On a GPU the answer may well differ: in the story this course comes "
                "from (week 4, *Where this course comes from*), ONNX Runtime ran the int8 model's quantized ops on "
                "the CPU. Run this page on a GPU to add the row.")
    label = env.device_label(gpu_latency["provenance"])
    timed = {r["variant"] for r in gpu_rows}
    reasons = {f'{s["model"]}/{s["route"]}': s["reason"] for s in gpu_latency["result"].get("skipped", [])}
    keys = capstone.latency_keys(extra)
    missing = [f"{v.name} ({reasons.get(keys[v.name], 'no timing of it in the record')})"
               for v in capstone.VARIANTS if v.name not in timed]
    return (f"The Kaggle GPU row comes from the latency record of **{label}**: the same variants and the same rule, "
            f"every latency timed on the GPU, and the GPU's memory as the budget. "
            + (f"Not timed there, so not candidates: {'; '.join(missing)}. " if missing else "")
            + "Read its pick beside week 4's placement check: where ONNX Runtime ran the quantized ops decides "
              "whether int8 can win on a GPU.")
