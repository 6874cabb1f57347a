"""What week 1 shows of a training run: the learning curve, and one throughput row per stored fine-tune.

    week1.learning_curve(history)                 # lab.train's history: loss per step, accuracy per epoch
    week1.throughput_rows(store.load_all("week1/finetune", profile.name))
"""
from __future__ import annotations

import numpy as np

from lab.record import env


def learning_curve(history: dict, title: str = "Training loss and validation accuracy"):
    """Per-step training loss (raw and smoothed) with the validation accuracy after each epoch."""
    import matplotlib.pyplot as plt
    from lab.display import report
    loss = np.array(history["loss"])
    window = max(1, len(loss) // 20)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(np.arange(1, len(loss) + 1), loss, color="0.8", lw=0.8, label="loss per step")
    ax.plot(np.arange(window, len(loss) + 1), smooth, color="C0", lw=2, label=f"mean of {window} steps")
    report.style(ax, title, "optimizer step", "cross-entropy loss")
    acc = ax.twinx()
    acc.plot([e["step"] for e in history["epochs"]], [e["val_accuracy"] for e in history["epochs"]],
             "o-", color="C1", label="validation accuracy")
    acc.axhline(history["baseline"]["accuracy"], color="C1", ls=":", lw=1, label="majority baseline")
    acc.set_ylabel("validation accuracy")
    acc.set_ylim(0.4, 1.0)
    lines = ax.get_legend_handles_labels()[0] + acc.get_legend_handles_labels()[0]
    report.legend_below(ax, lines, [ln.get_label() for ln in lines])
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


def checks_rows(record: dict) -> list[dict]:
    """The determinism, reload and resume checks as table rows, with shortened fingerprints."""
    return [{"check": row["check"], "where": row["mode"], "result": "pass" if row["pass"] else "FAIL",
             "SHA-256 of the weights": row["fingerprint"][:16] + "…",
             "reference": (row.get("reference") or row["fingerprint"])[:16] + "…"}
            for row in record["rows"]]
