"""What week 5 shows: the students beside their teacher, every latency from the one latency record, and the loss.

    week5.rows_for_page(result, latency.lookup(latency_record)); week5.loss_plot(result)
    week5.best_row(result)       # the best distilled student, picked on validation accuracy
"""
from __future__ import annotations

from dataclasses import asdict

from lab import capstone, distill
from lab.display import latency


def best_row(result: dict) -> dict:
    """The record's row of the best distilled student, picked on validation accuracy (lab.capstone.best_student),
    so that its test accuracy is an honest estimate rather than the best of several test scores."""
    best = asdict(capstone.best_student(result))
    return next(r for r in result["rows"] if r.get("settings") == best)


def fp32_latency(speed: dict[str, dict[int, dict]], row: dict) -> dict[int, dict]:
    """{batch: latency row} of a row's model in PyTorch fp32, from lab.display.latency.lookup(the latency record)."""
    return speed[f"{distill.variant_of(row)}/pytorch-fp32"]     # the route lab.quantize calls its reference


def rows_for_page(result: dict, speed: dict[str, dict[int, dict]]) -> list[dict]:
    """The page's table; `speed`: lab.display.latency.lookup(the latency record), where every latency comes from."""
    out = []
    for r in result["rows"]:
        lat = fp32_latency(speed, r)
        out.append({"model": r["model"], "layers": r["layers"],
                    "validation accuracy": f'{r["val_accuracy"]:.3f}' if "val_accuracy" in r else "",
                    "test accuracy": f'{r["accuracy"]:.3f}',
                    "parameters (M)": f'{r["n_params"] / 1e6:.1f}',
                    "outside embeddings (M)": f'{r["n_params_non_embedding"] / 1e6:.1f}',
                    "size (MB)": f'{r["size_mb"]:.1f}',
                    **{f"batch {b} ms (p10–p90)": latency.ms(x) for b, x in sorted(lat.items())},
                    "training time (s)": f'{r["train_s"]:.0f}' if "train_s" in r else "week 1"})
    return out


def relative_loss(loss, window: int = 10):
    """(steps, running mean of `window` steps divided by the first window's mean): each student's loss as a share
    of where it started. A distilled loss adds the soft term to the labels' cross-entropy, so its level is not
    comparable with the labels-only loss; its fall from its own start is."""
    import numpy as np
    loss = np.asarray(loss, dtype=float)
    w = max(1, min(window, len(loss)))
    mean = np.convolve(loss, np.ones(w) / w, mode="valid")
    return np.arange(w, len(loss) + 1), mean / mean[0]


def loss_plot(result: dict, window: int = 10):
    """Each student's training loss per step, as a running mean of `window` steps relative to its first window's
    (relative_loss says why not the raw levels)."""
    import matplotlib.pyplot as plt
    from lab.display import report
    fig, ax = plt.subplots(figsize=(report.PHONE_FIG_WIDTH_IN, 3.8))
    for i, r in enumerate(row for row in result["rows"] if "loss" in row):
        steps, rel = relative_loss(r["loss"], window)
        ax.plot(steps, rel, color=f"C{i}", label=r["model"])
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    report.style(ax, "Student training loss, relative to where each started", "optimizer step",
                 f"loss / mean of first {window} steps")
    # further down than the default: this axes is short, so the default fraction put the legend on the x label
    # one column: at a phone's font size two of "student, distilled (T=2, α=0.5)" side by side are wider than the
    # figure
    report.legend_below(ax, ncols=1, y=-0.26, fontsize=report.PHONE_FONT_PT)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig
