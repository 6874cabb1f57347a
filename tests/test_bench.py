"""lab.bench: the harness summarizes and batches correctly (its interleaved runs: tests/test_latency.py)."""
import numpy as np
import pytest

from lab import bench, data


def _enc(lengths, pad_id=0):
    return data.Encoded(input_ids=[[7] * n for n in lengths], labels=[i % 2 for i in range(len(lengths))],
                        pad_id=pad_id)


def test_summarize_matches_numpy_on_a_known_sample():
    times = [float(x) for x in range(1, 21)]             # 1..20 ms
    s = bench.summarize(times)
    assert s["median_ms"] == pytest.approx(10.5)
    assert s["p10_ms"] == pytest.approx(np.percentile(times, 10))   # 2.9 with linear interpolation
    assert s["p90_ms"] == pytest.approx(np.percentile(times, 90))   # 18.1
    assert s["spread"] == pytest.approx((18.1 - 2.9) / 10.5)
    assert s["repeats"] == 20


def test_interleaved_refuses_zero_rounds():
    with pytest.raises(ValueError, match="rounds=0"):
        bench.interleaved({"a": lambda b: None}, {}, rounds=0)


def test_sample_batches_use_real_lengths_and_are_reproducible():
    enc = _enc([3, 9, 4, 12, 5, 6, 7, 8])
    a = data.sample_batches(enc, (1, 4), seed=1)
    b = data.sample_batches(enc, (1, 4), seed=1)
    for size in (1, 4):
        assert a[size]["input_ids"].shape[0] == size
        assert a[size]["input_ids"].equal(b[size]["input_ids"])
        # padded to the longest chosen example: the width is a real length from the data
        widths = a[size]["attention_mask"].sum(1)
        assert a[size]["input_ids"].shape[1] == int(widths.max())
        assert set(widths.tolist()) <= set(enc.lengths())


def test_sample_batches_refuses_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="batch size 32 > 8"):
        data.sample_batches(_enc([3] * 8), (32,))


def test_distinguishable_needs_non_overlapping_ranges():
    fast = {"p10_ms": 1.0, "p90_ms": 2.0}
    slow = {"p10_ms": 3.0, "p90_ms": 4.0}
    overlapping = {"p10_ms": 1.5, "p90_ms": 3.5}
    assert bench.distinguishable(fast, slow) and bench.distinguishable(slow, fast)
    assert not bench.distinguishable(fast, overlapping)
