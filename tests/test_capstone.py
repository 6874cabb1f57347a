"""lab.capstone: the Pareto front and the recommendation rule, on synthetic variants whose answer is known."""
import pytest

from lab import capstone, decide


N = 1000     # test snippets of the synthetic variants


def _correct(right: int, n: int = N) -> str:
    """'0'/'1' per snippet, the first `right` right: two variants disagree only on the snippets between their two
    counts, all one way, so the paired test sees every difference of 6 or more snippets (p = 2 / 2**6 < 0.05)."""
    return "1" * right + "0" * (n - right)


def _v(name, accuracy, ms, mb=10.0):
    return {"variant": name, "accuracy": accuracy, "size_mb": mb, "source": "test", "correct": _correct(round(accuracy * N)),
            "latency": {1: {"median_ms": ms, "p10_ms": ms, "p90_ms": ms}}}


ROWS = [_v("big", 0.85, 10.0, 90), _v("int8", 0.84, 4.0, 23), _v("slow and worse", 0.80, 12.0, 90),
        _v("student", 0.78, 2.0, 60), _v("tie on speed, worse", 0.70, 2.0, 60)]


def test_the_pareto_front_keeps_exactly_the_undominated_variants():
    assert capstone.pareto(ROWS, batch=1) == ["big", "int8", "student"]


def test_a_variant_equal_on_both_counts_does_not_dominate_its_twin():
    twins = [_v("a", 0.8, 5.0), _v("b", 0.8, 5.0)]
    assert capstone.pareto(twins, batch=1) == ["a", "b"]


def test_the_recommendation_is_the_fastest_within_a_point_of_the_best():
    dep = decide.Deployment("laptop", "cpu", 1, "plenty", budget_mb=8000)
    assert capstone.recommend(ROWS, dep)["ship"] == "int8"          # 0.84 is within a point of 0.85, and faster


def test_a_size_budget_removes_what_does_not_fit():
    dep = decide.Deployment("phone", "cpu", 1, "a 300 MB cap", budget_mb=300)   # 10% of it: 30 MB
    assert capstone.recommend(ROWS, dep)["ship"] == "int8"
    tight = decide.Deployment("watch", "cpu", 1, "a 100 MB cap", budget_mb=100)   # 10 MB: nothing fits
    pick = capstone.recommend(ROWS, tight)
    assert pick["fit the budget"] == "0 of 5" and pick["ship"] == "int8"        # none fits: the smallest


def test_every_recommendation_lies_on_the_front():
    front = set(capstone.pareto(ROWS, batch=1))
    for dep in decide.DEPLOYMENTS:
        if dep.batch == 1:
            assert capstone.recommend(ROWS, dep)["ship"] in front


def _spread(name, accuracy, ms, half_width, mb=10.0):
    row = _v(name, accuracy, ms, mb)
    row["latency"][1].update(p10_ms=ms - half_width, p90_ms=ms + half_width)
    return row


def test_overlapping_ranges_are_a_tie_on_speed_so_only_accuracy_decides():
    # "fast" has the lower median, but its range overlaps "accurate"'s: it is not faster, only less accurate (8 of
    # 1,000 snippets, all one way: p = 0.008)
    rows = [_spread("accurate", 0.85, 10.0, 2.0), _spread("fast", 0.842, 9.0, 2.0)]
    assert capstone.pareto(rows, batch=1) == ["accurate"]
    dep = decide.Deployment("laptop", "cpu", 1, "plenty", budget_mb=8000)
    assert capstone.recommend(rows, dep)["ship"] == "accurate"
    # the control: ranges apart, so the faster one is on the front and shipped (within a point of the best)
    apart = [_spread("accurate", 0.85, 10.0, 0.5), _spread("fast", 0.842, 5.0, 0.5)]
    assert capstone.pareto(apart, batch=1) == ["accurate", "fast"]
    assert capstone.recommend(apart, dep)["ship"] == "fast"


def test_variants_take_every_latency_from_the_one_latency_record():
    def routes(*names):
        return {"routes": [{"route": n, "status": "ok", "accuracy": 0.8, "size_mb": 10.0} for n in names]}
    week4 = {"result": routes("pytorch-fp32", "pytorch-int8", "onnx-int8-qint8")}
    extra = {"config": {"temperature": 2.0, "alpha": 0.5},
             "result": {"lora_merged": routes("pytorch-fp32"), "student": routes("pytorch-fp32", "onnx-int8-qint8")}}
    names = ["full/pytorch-fp32", "full/pytorch-int8", "full/onnx-int8-qint8", "lora-merged/pytorch-fp32",
             "student-T2-a0.5/pytorch-fp32", "student-T2-a0.5/onnx-int8-qint8"]
    lat = {"result": {"rows": [{"variant": n, "batch": 1, "median_ms": float(i + 1), "p10_ms": i + 0.9,
                                "p90_ms": i + 1.1} for i, n in enumerate(names)]}}
    rows = capstone.variants(week4, extra, lat)
    assert [r["latency"][1]["median_ms"] for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


# ---------------------------------------------------------------- the noise rule for accuracy

def _pair(a_only: int, b_only: int, both: int, n: int = 1276):
    """Two variants on n snippets: both right on `both`, only a on a_only, only b on b_only, both wrong on the rest."""
    neither = n - both - a_only - b_only
    a = "1" * both + "1" * a_only + "0" * b_only + "0" * neither
    b = "1" * both + "0" * a_only + "1" * b_only + "0" * neither
    return ({"variant": "a", "accuracy": a.count("1") / n, "correct": a},
            {"variant": "b", "accuracy": b.count("1") / n, "correct": b})


def test_three_snippets_of_1276_are_not_distinguishable_and_five_points_are():
    # 3 snippets apart (0.2 points), whether the two disagree on 3 snippets or on 97
    for a_only, b_only in ((3, 0), (50, 47)):
        a, b = _pair(a_only, b_only, both=1000)
        t = capstone.accuracy_test(a, b)
        assert t["tested"] and not t["distinguishable"] and round(t["points"] * 1276 / 100) == 3
        assert not capstone.more_accurate(a, b) and not capstone.more_accurate(b, a)
    # 5 points (64 snippets) on 96 discordant snippets: stated, with its direction
    a, b = _pair(80, 16, both=950)
    t = capstone.accuracy_test(a, b)
    assert t["distinguishable"] and t["p"] < 1e-9 and abs(t["points"] - 100 * 64 / 1276) < 1e-9
    assert capstone.more_accurate(a, b) and not capstone.more_accurate(b, a)
    # the control: the same 5 points on 1,064 discordant snippets is within the noise (p = 0.054)
    a, b = _pair(564, 500, both=100)
    assert not capstone.accuracy_test(a, b)["distinguishable"]


def test_mcnemar_p_is_the_exact_two_sided_binomial_of_the_discordant_snippets():
    import math
    a, b = _pair(7, 1, both=500, n=600)
    # P(X <= 1) + P(X >= 7) for X ~ Binomial(8, 1/2), written out
    p = sum(math.comb(8, k) for k in (0, 1, 7, 8)) / 2 ** 8
    assert abs(capstone.accuracy_test(a, b)["p"] - p) < 1e-12
    same, _ = _pair(0, 0, both=500, n=600)
    assert capstone.accuracy_test(same, same)["p"] == 1.0 and not capstone.accuracy_test(same, same)["distinguishable"]


def test_a_row_without_per_snippet_results_ties_on_accuracy_and_is_marked_untested():
    a, b = _pair(80, 16, both=950)
    old = {k: v for k, v in b.items() if k != "correct"}       # an older record, or a GPU one
    t = capstone.accuracy_test(a, old)
    assert not t["tested"] and not t["distinguishable"] and t["p"] is None and t["points"] > 4
    assert not capstone.more_accurate(a, old)
    # so on the front, a faster variant without the field is not beaten by a more accurate slower one
    slow = {**a, "latency": {1: {"median_ms": 10.0, "p10_ms": 9.0, "p90_ms": 11.0}}}
    fast = {**old, "variant": "old", "latency": {1: {"median_ms": 5.0, "p10_ms": 4.5, "p90_ms": 5.5}}}
    assert capstone.pareto([slow, fast], batch=1) == ["old"]
    assert capstone.pareto([slow, {**fast, "correct": b["correct"]}], batch=1) == ["a", "old"]     # the control


def test_per_snippet_results_of_different_test_sets_are_refused_by_length():
    a, b = _pair(3, 0, both=10, n=20)
    with pytest.raises(ValueError, match="20 per-snippet results.*19"):
        capstone.accuracy_test(a, {**b, "correct": b["correct"][:19]})


def test_the_front_and_the_pick_ignore_an_accuracy_lead_inside_the_noise():
    # week 6's case: the full model 4 snippets more accurate than a merged LoRA model of the same speed, and an int8
    # model 3 snippets behind but faster beyond the noise
    full, lora = _pair(10, 6, both=1040)
    int8 = {"variant": "int8", "accuracy": (1040 + 7) / 1276, "correct": "1" * 1040 + "0" * 16 + "1" * 7 + "0" * 213}
    rows = [{**full, "variant": "full", "latency": {1: {"median_ms": 10.0, "p10_ms": 9.0, "p90_ms": 11.0}}},
            {**lora, "variant": "lora", "latency": {1: {"median_ms": 10.2, "p10_ms": 9.1, "p90_ms": 11.1}}},
            {**int8, "latency": {1: {"median_ms": 4.0, "p10_ms": 3.8, "p90_ms": 4.2}}}]
    rows = [{**r, "size_mb": 10.0, "source": "test"} for r in rows]
    assert rows[0]["accuracy"] > rows[2]["accuracy"]              # the measured accuracies would keep "full"
    assert capstone.pareto(rows, batch=1) == ["int8"]
    dep = decide.Deployment("laptop", "cpu", 1, "plenty", budget_mb=8000)
    assert capstone.recommend(rows, dep)["ship"] == "int8"


def test_the_validation_accuracy_picks_the_best_student_not_the_test_accuracy():
    result = {"rows": [{"model": "teacher", "accuracy": 0.9, "val_accuracy": 0.9},
                       {"model": "labels", "accuracy": 0.7, "val_accuracy": 0.9, "settings": {"temperature": 1.0, "alpha": 0.0}},
                       {"model": "T2", "accuracy": 0.80, "val_accuracy": 0.78, "settings": {"temperature": 2.0, "alpha": 0.5}},
                       {"model": "T4", "accuracy": 0.79, "val_accuracy": 0.79, "settings": {"temperature": 4.0, "alpha": 0.5}}]}
    assert capstone.best_student(result).temperature == 4.0       # T2 wins on test, T4 on validation
    result["rows"][3].pop("val_accuracy")
    with pytest.raises(ValueError, match="no validation accuracy for T4.*re-measure week5/distill"):
        capstone.best_student(result)
