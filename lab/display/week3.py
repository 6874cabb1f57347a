"""What week 3 shows: per-class scores, the confusion matrices, the reliability diagram, and where two models agree.

    week3.per_class_rows([full, adapted]); week3.confusion_plot([full, adapted]); week3.reliability_plot([...])
"""
from __future__ import annotations

from lab import errors
from lab.display import report


def per_class_rows(models: list[errors.Predictions]) -> list[dict]:
    from sklearn.metrics import precision_recall_fscore_support
    rows = []
    for m in models:
        p, r, f, n = precision_recall_fscore_support(m.labels, m.preds, labels=[0, 1], zero_division=0)
        rows += [{"model": m.name, "class": errors.LABELS[c], "precision": p[c], "recall": r[c], "F1": f[c],
                  "test snippets": int(n[c])} for c in (0, 1)]
    return rows


def confusion_plot(models: list[errors.Predictions]):
    """One confusion matrix per model, counts in the cells (rows: the true class, columns: the predicted one)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay
    # side by side within the phone-readable width (2.6 in a matrix for two models), not 3.4 in each: shrunk to a
    # phone's column, 6.8 in of matrices left their labels at ~6 px
    fig, axes = plt.subplots(1, len(models), figsize=(report.PHONE_FIG_WIDTH_IN, 3.0), squeeze=False)
    for ax, m in zip(axes[0], models):
        ConfusionMatrixDisplay.from_predictions(m.labels, m.preds, labels=[0, 1], display_labels=errors.LABELS, ax=ax,
                                                colorbar=False, cmap="Blues", values_format="d")
        ax.set_title(m.name, fontsize=report.PHONE_FONT_PT)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig


def reliability_plot(models: list[errors.Predictions], n_bins: int = 10):
    """Accuracy against confidence per bin, one line per model (the diagonal is perfect calibration); under it,
    how many snippets each bin holds, as bars: a bin of 75 snippets moves its point more than one of 800."""
    import matplotlib.pyplot as plt
    fig, (ax, count) = plt.subplots(2, 1, figsize=(report.PHONE_FIG_WIDTH_IN, 5.6), sharex=True, height_ratios=(3, 1))
    ax.plot([0.5, 1], [0.5, 1], ":", color="0.5", label="perfectly calibrated")
    width = 0.8 / (n_bins * len(models))           # the bars of one bin side by side, within the bin's width
    for i, m in enumerate(models):
        bins = errors.calibration_bins(m, n_bins)
        ax.plot([b["mean confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=f"C{i}",
                label=f"{m.name} (ECE {errors.ece(m, n_bins):.3f})")
        # bars at the bin's mean confidence, where its point is, shifted per model so that they do not overlap
        count.bar([b["mean confidence"] + (i - (len(models) - 1) / 2) * width for b in bins], [b["n"] for b in bins],
                  width=width, color=f"C{i}")
    report.style(ax, "Reliability: is a 0.9 prediction right 90% of the time?", "", "accuracy in the bin")
    report.style(count, "", "mean confidence in the bin", "snippets")
    ax.set_xlim(0.48, 1.02)
    # upper left: a point there would be a bin of snippets at 0.5-0.6 confidence that are nearly all right, a model
    # far less sure than it should be; fine-tuned classifiers err the other way (Guo et al. 2017)
    ax.legend(fontsize=report.PHONE_FONT_PT, frameon=False, loc="upper left")
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig


def agreement_rows(a: errors.Predictions, b: errors.Predictions) -> list[dict]:
    """How often both are right, only one is, or both are wrong."""
    cases = [("both right", a.correct & b.correct), (f"only {a.name} right", a.correct & ~b.correct),
             (f"only {b.name} right", ~a.correct & b.correct), ("both wrong", ~a.correct & ~b.correct)]
    return [{"": name, "snippets": int(mask.sum()), "share": f"{100 * mask.mean():.1f}%"} for name, mask in cases]
