"""Error analysis: what a classifier gets wrong, how sure it was when it did, and where.

    rec = measured("week3/errors", week3.errors_record, profile=profile)   # test-set probabilities, both models
    full = errors.Predictions.from_record(rec["result"], "full fine-tune", texts)
    errors.confidently_wrong(full); errors.by_length([full]); errors.ece(full); errors.slice_test(full, "not")

The record (lab.recipes.week3) holds raw measurements only (each test snippet's predicted probability, its label and
length); every analysis here is computed from them, so an analysis can change without re-running a model. Metrics come
from scikit-learn (confusion matrix, precision/recall/F1), significance from scipy (Fisher's exact test).
Calibration bins follow sklearn.calibration.calibration_curve (tests/test_errors.py checks them against it);
the expected calibration error is computed here because scikit-learn has none.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from lab import data

LABELS = list(data.LABEL_NAMES)       # 0 = rotten, 1 = fresh


def texts_sha256(texts) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


@dataclass
class Predictions:
    """One model's predictions on the test set, with what is needed to read them."""
    name: str
    labels: np.ndarray      # (n,) 0 = rotten, 1 = fresh
    p_fresh: np.ndarray     # (n,) predicted probability of 'fresh'
    lengths: np.ndarray     # (n,) tokens, after truncation
    texts: list[str]

    @classmethod
    def from_record(cls, result: dict, name: str, texts) -> "Predictions":
        texts = list(texts)
        if texts_sha256(texts) != result["texts_sha256"] or len(texts) != result["n"]:
            raise ValueError(f"these {len(texts)} texts are not the {result['n']} test snippets the record was "
                             f"measured on (the split or the data changed): re-measure with LAB_REMEASURE=1")
        m = result["models"][name]
        return cls(name, np.asarray(result["labels"]), np.asarray(m["p_fresh"]), np.asarray(result["lengths"]), texts)

    @property
    def preds(self) -> np.ndarray:
        return (self.p_fresh > 0.5).astype(int)      # a tie goes to class 0, as argmax over the logits does

    @property
    def confidence(self) -> np.ndarray:
        """The probability of the predicted class: 0.5 to 1 for two classes."""
        return np.maximum(self.p_fresh, 1 - self.p_fresh)

    @property
    def correct(self) -> np.ndarray:
        return self.preds == self.labels


# ---------------------------------------------------------------- what it gets wrong


def confidently_wrong(m: Predictions, k: int = 8) -> list[dict]:
    """The k mistakes the model was surest of: where to start reading."""
    wrong = np.flatnonzero(~m.correct)
    worst = wrong[np.argsort(-m.confidence[wrong], kind="stable")][:k]
    return [{"snippet": m.texts[i], "true": LABELS[m.labels[i]], "predicted": LABELS[m.preds[i]],
             "P(predicted)": round(float(m.confidence[i]), 3), "tokens": int(m.lengths[i])} for i in worst]


def length_bins(lengths: np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Edges that cut the lengths into n_bins groups of about equal size (quartiles by default)."""
    return np.unique(np.quantile(lengths, np.linspace(0, 1, n_bins + 1)).round())


def by_length(models: list[Predictions], n_bins: int = 4) -> list[dict]:
    """Error rate per length bucket (token counts; buckets are quantiles of the test set), with counts."""
    edges = length_bins(models[0].lengths, n_bins)
    last = len(edges) - 2
    bucket = np.searchsorted(edges[1:-1], models[0].lengths, side="right")   # edges[b] <= tokens < edges[b+1]
    rows = []
    for b in range(last + 1):
        inside = bucket == b
        hi = int(edges[b + 1]) - (b < last)      # the last bucket includes the longest snippet
        row = {"tokens": f"{int(edges[b])}–{hi}", "snippets": int(inside.sum())}
        for m in models:
            errs = int((~m.correct[inside]).sum())
            row[f"{m.name}: errors"] = errs
            row[f"{m.name}: error rate"] = f"{100 * errs / max(1, inside.sum()):.1f}%"
        rows.append(row)
    return rows


# ---------------------------------------------------------------- how sure it was

def calibration_bins(m: Predictions, n_bins: int = 10) -> list[dict]:
    """Reliability diagram data: bins of equal width over the confidence, (lo, hi]; per non-empty bin the mean
    confidence, the accuracy and the count. The same bins as sklearn's calibration_curve(strategy='uniform')."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], m.confidence)
    rows = []
    for b in range(n_bins):
        inside = ids == b
        if inside.any():
            rows.append({"bin": f"{edges[b]:.1f}–{edges[b + 1]:.1f}", "n": int(inside.sum()),
                         "mean confidence": float(m.confidence[inside].mean()),
                         "accuracy": float(m.correct[inside].mean())})
    return rows


def ece(m: Predictions, n_bins: int = 10) -> float:
    """Expected calibration error: sum over bins of (share of examples) x |accuracy - mean confidence|. 0 is
    perfect: among snippets predicted with 0.9 confidence, 90% are right."""
    return float(sum(b["n"] / len(m.labels) * abs(b["accuracy"] - b["mean confidence"])
                     for b in calibration_bins(m, n_bins)))


# ---------------------------------------------------------------- two models, and a hypothesis


def disagreements(a: Predictions, b: Predictions, k: int = 6) -> list[dict]:
    """Snippets where the two models predict different classes, those they split most sharply first."""
    differ = np.flatnonzero(a.preds != b.preds)
    order = differ[np.argsort(-np.abs(a.p_fresh[differ] - b.p_fresh[differ]), kind="stable")][:k]
    return [{"snippet": a.texts[i], "true": LABELS[a.labels[i]], f"{a.name}: P(fresh)": round(float(a.p_fresh[i]), 3),
             f"{b.name}: P(fresh)": round(float(b.p_fresh[i]), 3)} for i in order]


def slice_test(m: Predictions, pattern: str, label: str | None = None) -> dict:
    """A hypothesis about errors, tested: are snippets matching `pattern` (a regex, case-insensitive) wrong more
    often than the rest? Counts, error rates, and Fisher's exact test on the 2x2 table (two-sided p-value).
    `label` names the slice in the table ('negation words'); the pattern itself by default."""
    from scipy.stats import fisher_exact
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {e}") from None
    match = np.array([bool(rx.search(t)) for t in m.texts])
    if match.all() or not match.any():
        raise ValueError(f"pattern {pattern!r} matches {int(match.sum())} of {len(match)} snippets: a test needs "
                         f"snippets on both sides")
    wrong = ~m.correct
    table = [[int((wrong & match).sum()), int((~wrong & match).sum())],
             [int((wrong & ~match).sum()), int((~wrong & ~match).sum())]]
    _, p = fisher_exact(table)
    label = label or pattern
    return {"pattern": pattern, "model": m.name, "p_value": float(p),
            "rows": [{"snippets": side, "n": int(mask.sum()), "errors": int(wrong[mask].sum()),
                      "error rate": f"{100 * wrong[mask].mean():.1f}%"}
                     for side, mask in ((f"with {label}", match), (f"without {label}", ~match))]}
