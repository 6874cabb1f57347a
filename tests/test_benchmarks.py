"""The training-throughput benchmark's instruments do what their results file says they do. No speed assertions
(speed lives in benchmarks/results/): the lockstep hands over step by step, the two loops are fed the same batches
and the same model arithmetic, and a smoke run writes every section."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from step_lockstep import compare, lockstep  # noqa: E402
from step_operators import OperatorSteps  # noqa: E402


def toy_loop(name, steps, events, sleep_s=0.0, fail_at=None):
    """A real optimizer stepping `steps` times; each step logs its name and sleeps `sleep_s` inside the step."""
    def run():
        w = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.SGD([w], lr=0.1)
        for i in range(steps):
            if i == fail_at:
                raise ValueError(f"{name} broke at step {i}")
            time.sleep(sleep_s)
            (w ** 2).sum().backward()
            opt.step()
            opt.zero_grad()
            events.append(name)
    return run


def test_lockstep_alternates_the_loops_step_by_step_and_times_whole_steps():
    events = []
    steps = lockstep({"a": toy_loop("a", 5, events, 0.005), "b": toy_loop("b", 5, events, 0.02)}, first="b")
    assert events == ["b", "a"] * 5
    assert len(steps["a"]) == len(steps["b"]) == 4           # steps 2 to 5: setup and the tail left out
    assert min(steps["a"]) >= 0.005 and min(steps["b"]) >= 0.02    # a step's time holds its own work...
    assert max(steps["a"]) < 0.02                             # ...and not the other loop's
    result = compare([steps], "a", "b")
    assert result["ratio"] == pytest.approx(sum(steps["b"]) / sum(steps["a"]))


def test_lockstep_reraises_a_failing_loop_after_the_other_finishes():
    events = []
    with pytest.raises(RuntimeError, match="b failed in lockstep") as info:
        lockstep({"a": toy_loop("a", 4, events), "b": toy_loop("b", 4, events, fail_at=2)}, first="a")
    assert isinstance(info.value.__cause__, ValueError)
    assert events.count("a") == 4                             # the other loop ran on alone, nothing hung


def test_lockstep_refuses_anything_but_two_loops():
    with pytest.raises(ValueError, match="first='c'"):
        lockstep({"a": lambda: None, "b": lambda: None}, first="c")


def test_operator_profile_refuses_a_loop_too_short_to_record():
    with OperatorSteps(active=8) as ops:
        toy_loop("a", 5, [])()
    with pytest.raises(RuntimeError, match="made 5 optimizer steps"):
        ops.per_step()


def test_smoke_benchmark_feeds_both_loops_the_same_batches_and_writes_every_section(tmp_path):
    out = tmp_path / "train_throughput.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--profile", "smoke",
                    "--repeats", "1", "--out", str(out)], check=True, cwd=ROOT, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    rows = {r["row"]: r for r in result["rows"]}
    assert len(rows) == 5 and all(r["samples_per_s"] > 0 for r in rows.values())
    no_grouping, trainer = rows["lab.train, no length grouping"], rows["HF Trainer + DataCollatorWithPadding, same batches"]
    assert no_grouping["padded_tokens"] == trainer["padded_tokens"]       # the same batches, token for token
    assert rows["lab.train"]["padded_tokens"] < no_grouping["padded_tokens"]
    # every row in lab.train's own precision, which is the device's (lab.precision.precision_for)
    from lab.precision import default_device, precision_for
    assert result["precision"]["lab.train"] == precision_for(default_device()) and result["precision"]["all_same"]
    assert {r["precision"] for r in rows.values()} == {result["precision"]["lab.train"]}
    own = rows["HF Trainer, its own length grouping"]                     # the Trainer's own sampler, its own batches
    assert own["sampler"] == "LengthGroupedSampler" and trainer["sampler"] != own["sampler"]
    assert not own["in_best"] and own["batch_order"]["first_longest"] and 0 <= own["test_accuracy"] <= 1
    assert own["batch_order"]["longest_at"] == [0]                        # HF puts the longest batch first
    assert result["best_row"] != own["row"] and "lost_beyond_seed_noise" in result["own_grouping"]
    ops = {r["operator"]: r for r in result["operators"]["top"] + result["operators"]["differ"]}
    matmuls = ops["aten::mm"]                                    # the model's arithmetic, call for call
    assert matmuls["a"]["calls"] == matmuls["b"]["calls"] > 0
    paired = result["lockstep"]
    assert len(paired["runs"]) == 2 and {r["first"] for r in paired["runs"]} == set(result["operators"]["loops"])
    assert all(r["steps"] > 0 for r in paired["runs"])
    md = out.with_suffix(".md").read_text()
    for heading in ("## Where one epoch's time goes", "## Operator by operator", "## The two loops in lockstep",
                    "## What each candidate change bought"):
        assert heading in md
    assert "Precision: lab.train trained in" in md and "HF Trainer, its own length grouping (LengthGroupedSampler" in md


def test_pool_sweep_trains_every_pool_and_grouping_never_pads_more_than_random_batches(tmp_path):
    out = tmp_path / "length_pool.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "length_pool.py"), "--profile", "smoke", "--seeds", "1",
                    "--out", str(out)], check=True, cwd=ROOT, capture_output=True, timeout=600)
    rows = {r["pool"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {None, 4, 8, 16, 32}
    assert all(r["padded_tokens"] <= rows[None]["padded_tokens"] for r in rows.values())
    assert all(0 <= r["mean_accuracy"] <= 1 for r in rows.values())
    assert "| none: random batches |" in out.with_suffix(".md").read_text()
