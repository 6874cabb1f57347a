"""lab.display.phrases: every comparison phrase in every case, as the exact words a page prints."""
import pytest

from lab.display import latency, phrases


def _lat(median, half=0.5):
    return {"median_ms": median, "p10_ms": median - half, "p90_ms": median + half}


REF = _lat(10.0)


@pytest.mark.parametrize("mine, words", [
    (_lat(5.5), "1.8x as fast"),                     # a ratio: the ranges are apart
    (_lat(13.0), "1.3x slower"),                     # a ratio the other way
    (_lat(10.3), "not distinguishable here"),        # a tie: the ranges overlap, whatever the medians say
    (None, "not measured"),                          # a missing value
])
def test_speed_says_every_case_in_words(mine, words):
    assert phrases.speed(REF, mine) == words
    assert latency.as_fast(REF, mine) == words if mine is not None else True     # the old name says the same


def test_speed_says_a_busy_machine_and_a_missing_reference():
    assert phrases.speed(REF, _lat(5.5), noisy=True) == "1.8x as fast (measured on a busy machine)"
    assert phrases.speed(REF, _lat(10.3), noisy=True) == "not distinguishable here (measured on a busy machine)"
    assert phrases.speed(None, _lat(5.5)) == "not measured"


def test_speed_at_batches_reads_as_one_clause():
    refs = {1: REF, 32: _lat(300.0, 5)}
    assert (phrases.speed_at(refs, {1: _lat(5.5), 32: _lat(298.0, 5)})
            == "1.8x as fast at batch 1 and not distinguishable at batch 32")
    assert (phrases.speed_at(refs, {1: _lat(10.2), 32: _lat(200.0, 5)})
            == "not distinguishable at batch 1 and 1.5x as fast at batch 32")
    assert phrases.speed_at(refs, {1: _lat(10.2), 32: _lat(301.0, 5)}) == "not distinguishable at batches 1 and 32"
    assert (phrases.speed_at(refs, {1: _lat(5.5), 32: _lat(400.0, 5)})
            == "1.8x as fast at batch 1 and 1.3x slower at batch 32")
    assert phrases.speed_at(refs, {1: _lat(5.5)}) == "1.8x as fast at batch 1 and not measured at batch 32"
    assert phrases.speed_at({}, {}) == "not measured"
    assert (phrases.speed_at(refs, {1: _lat(5.5), 32: _lat(200.0, 5)}, noisy=True)
            == "1.8x as fast at batch 1 and 1.5x as fast at batch 32 (measured on a busy machine)")
    assert (phrases.speed_at({b: REF for b in (1, 8, 32)}, {b: _lat(5.5) for b in (1, 8, 32)})
            == "1.8x as fast at batch 1, 1.8x as fast at batch 8 and 1.8x as fast at batch 32")


def test_the_two_sentences_week_4_built_now_read_as_english():
    refs = {1: REF, 32: _lat(300.0, 5)}
    plain = phrases.speed_at(refs, {1: _lat(5.5), 32: _lat(298.0, 5)})
    int8 = phrases.speed_at(refs, {1: _lat(10.2), 32: _lat(200.0, 5)})
    sentences = [f"But ONNX Runtime in plain fp32 was already {plain}.", f"PyTorch int8 against PyTorch fp32: {int8}."]
    assert sentences == ["But ONNX Runtime in plain fp32 was already 1.8x as fast at batch 1 and not "
                         "distinguishable at batch 32.",
                         "PyTorch int8 against PyTorch fp32: not distinguishable at batch 1 and 1.5x as fast at "
                         "batch 32."]
    assert not any("as fast and not distinguishable" in s or "not distinguishable here and" in s for s in sentences)


def _pair(a_only, b_only, both, n=1276):
    neither = n - both - a_only - b_only
    a = "1" * (both + a_only) + "0" * (b_only + neither)
    b = "1" * both + "0" * a_only + "1" * b_only + "0" * neither
    return ({"accuracy": a.count("1") / n, "correct": a}, {"accuracy": b.count("1") / n, "correct": b})


def test_accuracy_says_every_case_in_words():
    a, b = _pair(80, 16, both=950)                  # 64 of 1,276 snippets apart: McNemar p ~ 2e-11
    assert phrases.accuracy(a, b) == "5.0 points higher (64 of 1,276 snippets)"
    assert phrases.accuracy(b, a) == "5.0 points lower (64 of 1,276 snippets)"
    a, b = _pair(3, 0, both=1000)                   # 3 of 1,276: p = 0.25
    assert phrases.accuracy(a, b) == "not distinguishable here"
    untested = {"accuracy": 0.5}                    # an older record, or a GPU one: no per-snippet predictions
    assert (phrases.accuracy(a, untested)
            == "not distinguishable here (no per-snippet predictions in the record to test)")
    assert phrases.accuracy(a, None) == "not measured"
    assert phrases.accuracy({"accuracy": None}, b) == "not measured"


# ---------------------------------------------------------------- the frozen pages

from pathlib import Path      # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FROZEN = sorted((ROOT / "_freeze").glob("**/execute-results/html.json"))
# the two sentences week 4 built by gluing phrases with "and" (issue 29): phrases.speed_at builds them now
GLUED = ("as fast and not distinguishable", "not distinguishable here and")


def glued(markdown: str) -> list[str]:
    return [g for g in GLUED if g in markdown]


def test_no_frozen_page_glues_two_comparison_phrases_with_and():
    assert FROZEN
    bad = {p.parent.parent.relative_to(ROOT / "_freeze").as_posix(): glued(p.read_text(encoding="utf-8"))
           for p in FROZEN}
    assert not {page: g for page, g in bad.items() if g}


def test_the_glue_check_catches_the_old_sentences():
    assert glued("But ONNX Runtime in plain fp32 already gave 1.8x as fast and not distinguishable here") == [GLUED[0]]
    assert glued("PyTorch int8 against PyTorch fp32: not distinguishable here and 1.5x as fast") == [GLUED[1]]


def test_week6_says_which_accuracies_the_paired_test_could_not_read():
    from lab.display import week6
    tested = {"variant": "a", "accuracy": 0.8, "correct": "10"}
    old = {"variant": "b", "accuracy": 0.7}
    assert week6.untested_note([tested]) == ("Every variant's record holds its per-snippet predictions, so the "
                                             "paired test compared every pair.")
    assert week6.untested_note([tested, old]).startswith("Marked (untested): b. Their records hold no per-snippet")
    assert [week6.accuracy_cell(r) for r in (tested, old)] == ["0.800", "0.700 (untested)"]
