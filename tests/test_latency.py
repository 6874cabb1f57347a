"""lab.bench's interleaved harness and lab.recipes.latency: every variant timed in one shuffled round-robin run, a busy
machine measured (and marked) rather than obeyed, and identical arithmetic measuring alike."""
import copy
import itertools
import os
import time

import pytest
import torch

from lab import bench, data, get_profile, models
from lab.record import records_used
from lab.display import latency as speeds
from lab import variants

SMOKE = get_profile("smoke")


def _batches():
    enc = data.Encoded(input_ids=[[7] * n for n in (3, 9, 4, 12, 5, 6, 7, 8)], labels=[0, 1] * 4, pad_id=0)
    return data.sample_batches(enc, (1, 4), seed=0)


# ---------------------------------------------------------------- the round-robin

def test_every_variant_and_batch_is_timed_once_per_round_in_a_seeded_shuffled_order():
    calls = []
    variants = {name: (lambda b, name=name: calls.append((name, b["input_ids"].shape[0]))) for name in "abc"}
    rows, loads, _ = bench.interleaved(variants, _batches(), rounds=6, warmup=2, seed=3, threads=1)
    warm, timed = calls[:3 * 2 * 2], calls[3 * 2 * 2:]
    assert sorted(set(warm)) == sorted(itertools.product("abc", (1, 4)))        # each warmed up before any timing
    rounds = [timed[i:i + 6] for i in range(0, len(timed), 6)]
    assert len(rounds) == 6 and all(sorted(r) == sorted(itertools.product("abc", (1, 4))) for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1                                 # the order changes between rounds
    again = []
    repeat = {name: (lambda b, name=name: again.append((name, b["input_ids"].shape[0]))) for name in "abc"}
    bench.interleaved(repeat, _batches(), rounds=6, warmup=2, seed=3, threads=1)
    assert again == calls                                                       # same seed, same order
    assert len(loads) == 6 + 1                                                  # before, and after every round
    assert len(rows) == 6 and all(r["repeats"] == 6 and r["threads"] == 1 for r in rows)
    assert {"variant", "batch", "seq_len", "median_ms", "p10_ms", "p90_ms", "spread", "load_avg",
            "others_cores"} <= set(rows[0])


def test_a_reference_that_is_not_a_variant_is_refused_by_name():
    with pytest.raises(KeyError, match="'ref'.*pass one of"):
        bench.measure({"a": lambda b: None}, _batches(), reference="ref", rounds=2)


@pytest.fixture(scope="module")
def smoke_model():
    """The smoke profile's model and batches, on one thread: on a shared 2-core machine, OpenMP threads that wait
    for a taken core make each call many times slower, and these tests check the harness, not the threading."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tok = models.load(SMOKE.model, seed=SMOKE.seed)
    enc = data.encode(tok, data.load_splits(SMOKE).test, SMOKE.max_length)
    yield model.eval(), data.sample_batches(enc, SMOKE.bench_batch_sizes, seed=SMOKE.seed)
    torch.set_num_threads(threads)


def _runner(model, times=1):
    @torch.inference_mode()
    def run(batch):
        for _ in range(times):
            model(**batch)
    return run


def test_two_identical_models_measured_together_have_overlapping_ranges(smoke_model):
    model, batches = smoke_model
    twin = copy.deepcopy(model)                                   # same weights, same arithmetic
    res = bench.measure({"a": _runner(model), "b": _runner(twin)}, batches, reference="a", rounds=30,
                        attempts=1)
    lat = bench.by_variant(res["rows"])
    for b in batches:
        assert not bench.distinguishable(lat["a"][b], lat["b"][b]), (lat["a"][b], lat["b"][b])
        assert speeds.as_fast(lat["a"][b], lat["b"][b]) == speeds.NOT_DISTINGUISHABLE


def test_a_model_doing_clearly_more_work_is_distinguishable(smoke_model):
    model, batches = smoke_model
    res = bench.measure({"once": _runner(model), "ten times": _runner(model, 10)}, batches, reference="once",
                        rounds=20, attempts=1)
    lat = bench.by_variant(res["rows"])
    for b in batches:
        assert bench.distinguishable(lat["once"][b], lat["ten times"][b]), (lat["once"][b], lat["ten times"][b])
        assert lat["once"][b]["median_ms"] < lat["ten times"][b]["median_ms"]


# ---------------------------------------------------------------- a busy machine

@pytest.fixture
def clock(monkeypatch):
    """A fake clock that only the variants below move: timing on a shared machine is what these tests must not
    depend on. clock[0] is the time in seconds. A 2-core machine, nobody else on it, unless a test says otherwise."""
    now = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(bench, "_load", lambda: 1.6)
    monkeypatch.setattr(bench, "others_since", lambda mark: 0.0)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    return now


def _takes(clock, *seconds):
    """A variant whose calls take seconds[0], seconds[1], ... in turn, on the fake clock."""
    calls = itertools.count()
    def run(batch):
        clock[0] += seconds[next(calls) % len(seconds)]
    return run


def test_a_spread_that_stays_too_wide_is_measured_again_then_marked_noisy_with_its_load(clock, monkeypatch):
    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)      # the wait for quiet, without waiting
    jittery = _takes(clock, 0.001, 0.020)                         # 1 ms, then 20 ms: no threshold accepts that
    one = {1: _batches()[1]}                                      # one batch: the ref's calls alternate strictly
    res = bench.measure({"ref": jittery, "other": _takes(clock, 0.005)}, one, reference="ref", rounds=4,
                        warmup=1, quiet_wait_s=12)
    assert res["attempts"] == 2 and res["rounds"] == 8           # measured again, with twice the rounds
    assert slept == [bench.QUIET_POLL_S]                         # after one window that found the cores free
    assert "ref" in res["noisy"]["why"] and str(bench.MAX_SPREAD) in res["noisy"]["why"]
    assert res["noisy"]["load"] and set(res["noisy"]["load"]) == {1.6}
    assert all(r["load_avg"] == 1.6 for r in res["rows"])


def test_a_steady_reference_is_measured_once_and_not_marked(clock):
    res = bench.measure({"ref": _takes(clock, 0.005), "other": _takes(clock, 0.001, 0.020)}, _batches(),
                        reference="ref", rounds=10, warmup=1, quiet_wait_s=0)
    assert res["attempts"] == 1 and "noisy" not in res           # only the reference's spread decides
    assert bench.by_variant(res["rows"])["ref"][1]["median_ms"] == pytest.approx(5.0)


def test_waiting_for_quiet_stops_once_other_processes_leave_the_cores(monkeypatch):
    others = iter([1.0, 0.8, 0.1, 0.0])
    monkeypatch.setattr(bench, "others_since", lambda mark: next(others))
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    assert bench.wait_for_quiet(60, poll_s=5) == 0.1
    assert slept == [5, 5, 5]
    assert bench.wait_for_quiet(0) is None and slept == [5, 5, 5]    # no wait asked for: nothing read


def test_a_busy_machine_marks_the_run_untrusted_even_when_the_spread_is_narrow(monkeypatch):
    # beside a one-core hog, a 2-thread run left other processes 0.70 of the 2 cores (measured on the Xeon)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    why = bench.busy(0.70)
    assert why and "0.70" in why and "2 cores" in why
    assert bench.busy(0.0) is None                                # alone: quiet
    assert bench.busy(None) is None                               # too short a window to read: no mark from it


def test_other_processes_cpu_is_counted_and_our_own_is_not():
    # Relative checks, so that they hold on a shared machine with others already on it.
    import subprocess
    import sys
    mark, cpu_start = bench.cpu_mark(), time.process_time()
    end = time.perf_counter() + 1.2
    while time.perf_counter() < end:                              # our own work, on one core
        pass
    others = bench.others_since(mark)
    wall, machine, _ = bench.cpu_mark()
    busy_cores = (machine - mark[1]) / (wall - mark[0])           # everyone's, ours included
    ours = (time.process_time() - cpu_start) / (wall - mark[0])   # ours, read apart from bench (a full core when
    assert ours > 0.2                                             # alone, less on a crowded machine)
    assert others < busy_cores - ours + 0.15                      # our core is not counted as another's
    mark = bench.cpu_mark()
    time.sleep(1.2)
    before = bench.others_since(mark)                             # whatever else this machine runs now
    spin = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"
    hog = subprocess.Popen([sys.executable, "-c", spin])
    mark = bench.cpu_mark()
    hog.wait()
    assert bench.others_since(mark) > before + 0.3                # a one-core hog is another's
    assert bench.others_since(bench.cpu_mark()) is None           # a window too short to read


def test_a_noisy_record_gets_a_visible_warning_and_a_quiet_one_none():
    prov = {"device": "cpu", "cpu": "Test CPU", "cpu_count": 2, "gpu": None}
    quiet = {"name": "latency/variants", "result": {"rows": []}, "provenance": prov}
    busy = {**quiet, "result": {"rows": [], "noisy": {"why": "full/pytorch-fp32's spread stayed 0.89", "load": [2.1]}}}
    assert records_used.noisy_note([quiet]) == ""
    note = records_used.noisy_note([quiet, busy])
    assert note.startswith("::: {.callout-warning}") and note.rstrip().endswith(":::")
    assert "0.89" in note and "2.1" in note and "latency/variants" in note
    assert records_used.noisy({**quiet, "noisy": busy["result"]["noisy"]})     # where `measured` may lift it
    many = {**quiet, "noisy": {"why": "busy", "load": [2.5, 3.1, None, 2.7, 2.9]}}
    assert "load 2.5 to 3.1 (4 readings)" in records_used.noisy_note([many])   # a range, not every reading


def test_week4_routes_get_their_latency_from_the_latency_record_of_the_same_hardware():
    def prov(cpu):
        return {"device": "cpu", "cpu": cpu, "cpu_count": 2, "gpu": None}
    routes = {"result": {"device": "cpu", "routes": []}, "provenance": prov("Xeon")}
    row = {"variant": "full/onnx-fp32", "model": "full", "route": "onnx-fp32", "batch": 1, "median_ms": 2.0}
    other = {"model": "lora-merged", "route": "pytorch-fp32", "variant": "lora-merged/pytorch-fp32", "batch": 1}
    here = {"result": {"device": "cpu", "rows": [row, other]}, "provenance": prov("Xeon")}
    elsewhere = {"result": {"device": "cpu", "rows": [{**row, "median_ms": 9.0}]}, "provenance": prov("EPYC")}
    joined, = speeds.with_latency([routes], [elsewhere, here])
    assert joined["result"]["latency"] == [row]                  # this hardware's, and the full model's only
    alone, = speeds.with_latency([routes], [elsewhere])
    assert alone["result"]["latency"] == []


def test_a_busy_minute_is_waited_out_and_measured_again_not_stored_noisy(clock, monkeypatch):
    # a steady reference, but the first run shares the cores with another job; it leaves during the wait
    others = iter([1.0, 0.9, 0.1, 0.0])                           # the run, two wait windows, the second run
    monkeypatch.setattr(bench, "others_since", lambda mark: next(others))
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    res = bench.measure({"ref": _takes(clock, 0.005)}, {1: _batches()[1]}, reference="ref", rounds=4, warmup=1,
                        quiet_wait_s=30)
    assert res["attempts"] == 2 and "noisy" not in res
    assert res["others_cores"] == [1.0, 0.1, 0.0]                 # the busy run's reading stays on the record


def test_a_machine_still_busy_after_the_wait_is_not_measured_again_but_marked_noisy(clock, monkeypatch):
    monkeypatch.setattr(bench, "others_since", lambda mark: 0.7)  # a one-core hog beside our two threads
    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    res = bench.measure({"ref": _takes(clock, 0.005)}, {1: _batches()[1]}, reference="ref", rounds=4, warmup=1,
                        quiet_wait_s=20)
    assert res["attempts"] == 1 and res["rounds"] == 4            # waited (bounded), then measured no more
    assert sum(slept) == pytest.approx(20)
    assert "0.70 of the 2 cores" in res["noisy"]["why"] and "1 run(s)" in res["noisy"]["why"]


def test_time_models_marks_a_record_measured_beside_a_crowd(monkeypatch):
    monkeypatch.setattr(bench, "others_since", lambda mark: 1.5)
    # the crowd alone decides here: the tiny model's real spread can pass 0.5 on its own, and is checked first
    monkeypatch.setattr(bench, "spread_of", lambda rows, variant: 0.0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    model, tok = models.load(SMOKE.model, seed=SMOKE.seed)
    rec = variants.time_models({variants.FULL: (model.eval(), tok, ("pytorch-fp32",))}, SMOKE, "cpu")
    assert [r["route"] for r in rec["rows"]] == ["pytorch-fp32"] * len(SMOKE.bench_batch_sizes)
    assert "1.50 of the 2 cores" in rec["noisy"]["why"]


def test_only_the_full_size_profiles_wait_for_quiet_before_timing_again():
    from lab import bench, config, variants
    waits = {name: variants.quiet_wait_s(profile) for name, profile in config.PROFILES.items()}
    assert waits == {"smoke": 0.0, "rehearsal-smoke": 0.0, "cpu": bench.QUIET_WAIT_S, "gpu": bench.QUIET_WAIT_S,
                     "rehearsal": bench.QUIET_WAIT_S}
