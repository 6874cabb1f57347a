"""lab.capstone: the Pareto front and the recommendation rule, on synthetic variants whose answer is known."""
from lab import capstone, decide


def _v(name, accuracy, ms, mb=10.0):
    return {"variant": name, "accuracy": accuracy, "size_mb": mb, "source": "test",
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
    # "fast" has the lower median, but its range overlaps "accurate"'s: it is not faster, only less accurate
    rows = [_spread("accurate", 0.85, 10.0, 2.0), _spread("fast", 0.845, 9.0, 2.0)]
    assert capstone.pareto(rows, batch=1) == ["accurate"]
    dep = decide.Deployment("laptop", "cpu", 1, "plenty", budget_mb=8000)
    assert capstone.recommend(rows, dep)["ship"] == "accurate"
    # the control: ranges apart, so the faster one is on the front and shipped (within a point of the best)
    apart = [_spread("accurate", 0.85, 10.0, 0.5), _spread("fast", 0.845, 5.0, 0.5)]
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
