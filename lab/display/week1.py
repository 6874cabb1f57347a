"""What week 1 shows of a training run: the learning curve, and one throughput row per stored fine-tune.

    week1.learning_curve(history)                 # lab.train's history: loss per step, accuracy per epoch
    week1.throughput_rows(store.load_all("week1/finetune", profile.name))
"""
from __future__ import annotations

import numpy as np

from lab.record import env


def learning_curve(history: dict, title: str = "Training loss and validation accuracy"):
    """Per-step training loss (raw and smoothed) above, the validation accuracy after each epoch against the
    majority-class accuracy below, on a shared step axis. Two panels, not one with a second y axis: drawn on a
    twin axis, the baseline (an accuracy) crossed the loss curve and read as a loss on the left-hand scale."""
    import matplotlib.pyplot as plt
    from lab.display import report
    loss = np.array(history["loss"])
    window = max(1, len(loss) // 20)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, (ax, acc) = plt.subplots(2, 1, figsize=(report.PHONE_FIG_WIDTH_IN, 5.0), sharex=True, height_ratios=(3, 2))
    ax.plot(np.arange(1, len(loss) + 1), loss, color="0.8", lw=0.8, label="loss per step")
    ax.plot(np.arange(window, len(loss) + 1), smooth, color="C0", lw=2, label=f"loss, mean of {window} steps")
    report.style(ax, title, "", "cross-entropy loss")
    base = history["baseline"]["accuracy"]
    acc.plot([e["step"] for e in history["epochs"]], [e["val_accuracy"] for e in history["epochs"]],
             "o-", color="C1", label="validation accuracy")
    acc.axhline(base, color="0.35", ls=":", lw=1.2, label="majority-class accuracy")
    # the baseline named on its own line, at the left where no epoch's point can be (the first is one epoch in)
    acc.annotate(f"always the majority class: {base:.3f}", (0, base), xycoords=("axes fraction", "data"),
                 xytext=(4, 3), textcoords="offset points", fontsize=8, color="0.35", va="bottom")
    report.style(acc, "", "optimizer step", "validation accuracy")
    acc.set_ylim(0.4, 1.0)
    handles = ax.get_legend_handles_labels()[0] + acc.get_legend_handles_labels()[0]
    # two columns: four labels in a row at a phone's font size are wider than the figure
    report.legend_below(acc, handles, [h.get_label() for h in handles], ncols=2, y=-0.42,
                        fontsize=report.PHONE_FONT_PT)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig


def throughput_rows(records: list[dict]) -> list[dict]:
    """One row per stored week-1 fine-tune (one per hardware): time, throughput, FLOP rate, test accuracy."""
    rows = []
    for rec in records:
        r, prov = rec["result"], rec["provenance"]
        h, p = r["history"], r["projection"]
        rows.append({
            "hardware": env.device_label(prov), "model": r["model"]["key"], "precision": h["precision"],
            "steps": h["step"], "training time (s)": round(h["clock"]["train_s"], 1),
            "median step (s)": round(float(np.median(h["step_s"])), 3),
            "samples/s": round(h["samples_per_s"], 1), "tokens/s": round(h["tokens_per_s"]),
            "TFLOP/s (estimate)": round(p["achieved_tflops"], 3),
            "GPU peak TFLOP/s": p["peak_tflops"] if p["peak_tflops"] else "n/a",
            "share of peak": f"{100 * p['fraction_of_peak']:.1f}%" if p["fraction_of_peak"] else "n/a",
            "test accuracy": round(r["test"]["accuracy"], 3),
        })
    return rows


def compared(row: dict) -> str:
    """What a check compared, shortened for a table cell: the logit difference for a reload (the weights' hash
    says nothing about logits), and for a weights check the hash once when both runs agree, both when not."""
    short = lambda h: h[:12] + "…"     # noqa: E731
    if "max_abs_diff" in row:
        return f"largest logit difference {row['max_abs_diff']:g}"
    ref = row.get("reference")
    if ref is None or ref == row["fingerprint"]:
        return f"weights SHA-256 {short(row['fingerprint'])} in both runs"
    return f"weights SHA-256 {short(row['fingerprint'])} against {short(ref)}"


def checks_rows(record: dict) -> list[dict]:
    """The determinism, reload and resume checks as table rows: the check, how it ran, its result, and what it
    compared (see compared). The page says "run on" once above the table when every row ran the same way."""
    return [{"check": row["check"], "run on": row["mode"], "result": "pass" if row["pass"] else "FAIL",
             "compared": compared(row)} for row in record["rows"]]
