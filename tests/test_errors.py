"""lab.errors against hand-computed examples and against scikit-learn's own calibration curve."""
import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from lab import errors
from lab.display import week3 as show3


def _preds(p_fresh, labels, lengths=None, texts=None, name="m"):
    n = len(labels)
    return errors.Predictions(name, np.asarray(labels), np.asarray(p_fresh, dtype=float),
                              np.asarray(lengths if lengths is not None else [10] * n),
                              list(texts) if texts is not None else [f"snippet {i}" for i in range(n)])


# Five snippets, by hand (confidence = probability of the predicted class; bins 0.1 wide):
#   p=0.95 y=1 right conf .95 | p=0.92 y=0 wrong conf .92   -> bin 0.9-1.0: n 2, accuracy .5, confidence .935
#   p=0.25 y=0 right conf .75                               -> bin 0.7-0.8: n 1, accuracy 1,  confidence .75
#   p=0.62 y=0 wrong conf .62 | p=0.35 y=1 wrong conf .65   -> bin 0.6-0.7: n 2, accuracy 0,  confidence .635
# ECE = 2/5 * |.5 - .935| + 1/5 * |1 - .75| + 2/5 * |0 - .635| = .174 + .05 + .254 = .478
HAND = _preds([0.95, 0.92, 0.25, 0.62, 0.35], [1, 0, 0, 0, 1])


def test_ece_matches_a_hand_computed_example():
    assert errors.ece(HAND) == pytest.approx(0.478)


def test_a_perfectly_calibrated_model_has_zero_ece():
    # ten snippets at confidence 0.8 (p_fresh 0.8), eight of them fresh: 80% right at 0.8
    assert errors.ece(_preds([0.8] * 10, [1] * 8 + [0] * 2)) == pytest.approx(0.0)


def test_calibration_bins_are_sklearns_calibration_curve():
    rng = np.random.default_rng(0)
    m = _preds(rng.uniform(0, 1, 500), rng.integers(0, 2, 500))
    accuracy, confidence = calibration_curve(m.correct, m.confidence, n_bins=10, strategy="uniform")
    bins = errors.calibration_bins(m)
    np.testing.assert_allclose([b["accuracy"] for b in bins], accuracy)
    np.testing.assert_allclose([b["mean confidence"] for b in bins], confidence)
    assert sum(b["n"] for b in bins) == 500


def test_predictions_follow_argmax_and_confidence_is_the_predicted_class():
    m = _preds([0.9, 0.1, 0.5], [1, 1, 0])
    assert m.preds.tolist() == [1, 0, 0]          # 0.5 is a tie: argmax picks class 0
    assert m.confidence.tolist() == [0.9, 0.9, 0.5]
    assert m.correct.tolist() == [True, False, True]


def test_per_class_rows_count_by_hand():
    # true: 1 1 0 0 ; predicted: 1 0 0 1  -> fresh: precision 1/2, recall 1/2 ; rotten: precision 1/2, recall 1/2
    rows = show3.per_class_rows([_preds([0.9, 0.2, 0.1, 0.7], [1, 1, 0, 0])])
    fresh = next(r for r in rows if r["class"] == "fresh")
    assert (fresh["precision"], fresh["recall"], fresh["test snippets"]) == (0.5, 0.5, 2)


def test_confidently_wrong_lists_the_surest_mistakes_first():
    rows = errors.confidently_wrong(HAND, k=2)
    assert [r["snippet"] for r in rows] == ["snippet 1", "snippet 4"]     # wrong at .92, then at .65
    assert rows[0]["true"] == "rotten" and rows[0]["predicted"] == "fresh"


def test_length_buckets_count_every_snippet_and_every_error_once():
    rng = np.random.default_rng(1)
    m = _preds(rng.uniform(0, 1, 300), rng.integers(0, 2, 300), lengths=rng.integers(3, 60, 300))
    rows = errors.by_length([m])
    assert sum(r["snippets"] for r in rows) == 300
    assert sum(r["m: errors"] for r in rows) == int((~m.correct).sum())


def test_agreement_cases_cover_every_snippet():
    a = _preds([0.9, 0.9, 0.1, 0.1], [1, 0, 1, 0], name="a")
    b = _preds([0.9, 0.1, 0.9, 0.9], [1, 0, 1, 0], name="b")
    counts = {r[""]: r["snippets"] for r in show3.agreement_rows(a, b)}
    assert counts == {"both right": 1, "only a right": 1, "only b right": 2, "both wrong": 0}
    assert len(errors.disagreements(a, b)) == 3


def test_slice_test_counts_the_matching_snippets_and_refuses_a_bad_pattern():
    m = _preds([0.9, 0.9, 0.9, 0.1], [0, 0, 1, 0], texts=["not good", "never again", "fine", "great"])
    result = errors.slice_test(m, r"\b(not|never)\b", "negation")
    inside, rest = result["rows"]
    assert (inside["n"], inside["errors"], rest["n"], rest["errors"]) == (2, 2, 2, 0)
    assert 0 < result["p_value"] <= 1
    with pytest.raises(ValueError, match=r"'\(unclosed'"):
        errors.slice_test(m, "(unclosed")


def test_predictions_refuse_texts_that_are_not_the_records():
    result = {"n": 2, "labels": [0, 1], "lengths": [3, 4], "texts_sha256": errors.texts_sha256(["a", "b"]),
              "models": {"m": {"p_fresh": [0.2, 0.8]}}}
    assert errors.Predictions.from_record(result, "m", ["a", "b"]).correct.all()
    with pytest.raises(ValueError, match="re-measure"):
        errors.Predictions.from_record(result, "m", ["a", "c"])
