"""The exercise checkers say right to a right answer, and wrong (with the reason) to a wrong one."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lab.display import exercises


def test_a_number_within_tolerance_is_right_and_one_outside_says_the_expected_value():
    assert exercises.check_number(1.01, 1.0, rel=0.02)
    wrong = exercises.check_number(1.1, 1.0, rel=0.02, what="the ratio", hint="Divide the other way.")
    assert not wrong and "the ratio is 1" in wrong.why and "Divide the other way." in wrong.why
    not_a_number = exercises.check_number("twelve", 12.0)
    assert not not_a_number and "'twelve' is not a number" in not_a_number.why
    assert wrong._repr_markdown_().startswith("**Not yet.**")


def test_steps_round_the_last_batch_up_and_name_the_usual_mistakes():
    assert exercises.check_steps(252, examples=4010, batch_size=32, epochs=2)           # 126 steps per epoch
    assert not exercises.check_steps(250, examples=4010, batch_size=32, epochs=2)
    assert "round up" in exercises.check_steps(250, examples=4010, batch_size=32, epochs=2).why
    assert "one epoch" in exercises.check_steps(126, examples=4010, batch_size=32, epochs=2).why


def test_padding_ratio_is_computed_from_the_same_batch_order_as_training():
    lengths = [5, 50] * 64
    grouped = exercises.padded_tokens(lengths, 8, group_by_length=True)
    ungrouped = exercises.padded_tokens(lengths, 8, group_by_length=False)
    assert grouped < ungrouped and grouped >= sum(lengths)
    assert exercises.check_padding_ratio(ungrouped / grouped, lengths, 8)
    assert not exercises.check_padding_ratio(grouped / ungrouped, lengths, 8)


def test_lora_params_count_both_matrices_in_every_layer():
    assert exercises.check_lora_params(6 * 2 * 2 * 8 * 384, layers=6, hidden=384, r=8, targets=2)
    half = exercises.check_lora_params(6 * 2 * 8 * 384, layers=6, hidden=384, r=8, targets=2)
    assert not half and "both A and B" in half.why


def test_ece_by_hand_matches_lab_errors():
    # two 'fresh' at confidence 0.9 (both right), three 'rotten' at p(fresh) = 0.2, confidence 0.8 (two right)
    p, y = [0.9, 0.9, 0.2, 0.2, 0.2], [1, 1, 0, 0, 1]
    assert exercises.check_ece(2 / 5 * abs(1.0 - 0.9) + 3 / 5 * abs(2 / 3 - 0.8), p, y)
    # the usual slip: p(fresh) = 0.2 taken as the confidence of a 'rotten' prediction
    mistaken = exercises.check_ece(2 / 5 * abs(1.0 - 0.9) + 3 / 5 * abs(2 / 3 - 0.2), p, y)
    assert not mistaken and "confidence 0.8" in mistaken.why


def test_bonferroni_multiplies_by_the_tests_tried():
    assert exercises.check_bonferroni(0.4, 0.02, 20)
    assert not exercises.check_bonferroni(0.02, 0.02, 20)


def test_distill_loss_by_hand_matches_lab_distill():
    s, t, T, a = [2.0, -1.0], [0.5, 1.5], 2.0, 0.5
    ps, pt = F.softmax(torch.tensor(s) / T, -1), F.softmax(torch.tensor(t) / T, -1)
    kl = float((pt * (pt.log() - ps.log())).sum())
    ce = -math.log(float(F.softmax(torch.tensor(s), -1)[1]))
    assert exercises.check_distill_loss(a * T * T * kl + (1 - a) * ce, s, t, 1, T, a)
    no_t2 = exercises.check_distill_loss(a * kl + (1 - a) * ce, s, t, 1, T, a)
    assert not no_t2 and "T^2" in no_t2.why


# p10-p90 ranges of +-5%: every pair of these latencies is distinguishable. Per-snippet results on 1,000 snippets,
# each variant right on the first accuracy x 1,000: the paired test tells every pair apart (10 or more snippets,
# all one way)
def _variant(v, acc, ms):
    right = round(acc * 1000)
    return {"variant": v, "accuracy": acc, "size_mb": 1.0, "correct": "1" * right + "0" * (1000 - right),
            "latency": {1: {"median_ms": ms, "p10_ms": 0.95 * ms, "p90_ms": 1.05 * ms}}}


ROWS = [_variant(v, acc, ms) for v, acc, ms in (("fp32", 0.80, 10.0), ("int8", 0.79, 4.0), ("student", 0.75, 5.0))]


def test_pareto_names_what_beats_an_extra_variant_and_what_is_missing():
    assert exercises.check_pareto(["fp32", "int8"], ROWS, 1)
    extra = exercises.check_pareto(["fp32", "int8", "student"], ROWS, 1)
    assert not extra and "student is beaten by int8" in extra.why
    missing = exercises.check_pareto(["fp32"], ROWS, 1)
    assert not missing and "int8 is missing" in missing.why
    assert "no variant is called 'gpu'" in exercises.check_pareto(["gpu"], ROWS, 1).why


def test_pareto_says_when_a_higher_accuracy_is_inside_the_noise():
    # fp32 is 3 snippets more accurate than a faster int8: not distinguishable, so int8 alone is on the front
    rows = [_variant("fp32", 0.803, 10.0), _variant("int8", 0.800, 4.0)]
    kept = exercises.check_pareto(["fp32", "int8"], rows, 1)
    assert not kept and ("fp32 is beaten by int8 (faster beyond the noise; fp32's higher accuracy, 0.803 against "
                         "0.800, is not distinguishable by McNemar's paired test)") in kept.why
    assert exercises.check_pareto(["int8"], rows, 1)


@pytest.mark.parametrize("verdict", [exercises.Verdict(True, "x."), exercises.Verdict(False, "y.")])
def test_a_verdict_reads_as_a_sentence(verdict):
    assert str(verdict) in ("Right: x.", "Not yet: y.")


# ---------------------------------------------------------------- placeholders, temperature, kernel time

import json

import numpy as np

from lab import profiling, runtime

PLACEHOLDER_CHECKS = {
    "number": lambda a: exercises.check_number(a, 1.0),
    "steps": lambda a: exercises.check_steps(a, examples=10, batch_size=4, epochs=1),
    "padding": lambda a: exercises.check_padding_ratio(a, [3, 9] * 8, 4),
    "lora": lambda a: exercises.check_lora_params(a, layers=2, hidden=8, r=2, targets=2),
    "ece": lambda a: exercises.check_ece(a, [0.9, 0.2], [1, 0]),
    "bonferroni": lambda a: exercises.check_bonferroni(a, 0.01, 20),
    "temperature": lambda a: exercises.check_temperature(a, [[0.0, 1.0], [1.0, 0.0]], [1, 1]),
    "accuracy": lambda a: exercises.check_accuracy_unchanged(a, [[0.0, 1.0], [1.0, 0.0]], [1, 1]),
    "cpu share": lambda a: exercises.check_cpu_share(a, profiling.exercise_trace()),
    "distill": lambda a: exercises.check_distill_loss(a, [2.0, -1.0], [0.5, 1.5], 1, 2.0, 0.5),
    "pareto": lambda a: exercises.check_pareto(a, ROWS, 1),
}


@pytest.mark.parametrize("placeholder", [None, ...], ids=["None", "Ellipsis"])
@pytest.mark.parametrize("check", PLACEHOLDER_CHECKS, ids=list(PLACEHOLDER_CHECKS))
def test_a_placeholder_answer_asks_to_be_filled_in_instead_of_crashing(check, placeholder):
    verdict = PLACEHOLDER_CHECKS[check](placeholder)
    assert not verdict and verdict.why.startswith("fill in your answer"), verdict


def synthetic_logits(true_t: float, n: int = 4000, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / true_t): the NLL's minimum lies near true_t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (n, 2))
    p1 = 1 / (1 + np.exp(-(z[:, 1] - z[:, 0]) / true_t))
    return z, (rng.random(n) < p1).astype(int)


def nll_by_hand(t, z, y):
    """Binary cross-entropy of softmax(z / t), written out (no scipy): the reference for the checker's search."""
    d = (z[:, 1] - z[:, 0]) / t
    return float(np.mean(np.log1p(np.exp(-np.where(y == 1, d, -d)))))


def test_temperature_is_right_at_the_nll_minimum_found_by_a_grid_and_wrong_far_from_it():
    z, y = synthetic_logits(2.0)
    grid = np.exp(np.linspace(np.log(0.1), np.log(10), 4001))
    by_grid = grid[np.argmin([nll_by_hand(t, z, y) for t in grid])]
    assert abs(exercises.best_temperature(z, y) - by_grid) < 0.01 * by_grid
    assert abs(exercises.validation_nll(1.7, z, y) - nll_by_hand(1.7, z, y)) < 1e-9
    assert exercises.check_temperature(by_grid, z, y)
    assert exercises.check_temperature(1.03 * by_grid, z, y)        # the NLL is flat near its minimum
    multiplied = exercises.check_temperature(1 / by_grid, z, y)
    assert not multiplied and "divide the logits by T" in multiplied.why
    too_high = exercises.check_temperature(3 * by_grid, z, y)
    assert not too_high and "too high" in too_high.why
    assert "must be > 0" in exercises.check_temperature(-1.0, z, y).why


def test_an_over_confident_model_needs_a_temperature_above_one():
    z, y = synthetic_logits(3.0, seed=1)          # the labels are noisier than the logits say
    assert exercises.best_temperature(z, y) > 2.5
    assert not exercises.check_temperature(1.0, z, y)


def test_accuracy_after_scaling_is_the_unscaled_accuracy():
    z, y = synthetic_logits(2.0)
    acc = float(((z[:, 1] > z[:, 0]).astype(int) == y).mean())
    assert exercises.check_accuracy_unchanged(acc, z / 2.5, y)
    changed = exercises.check_accuracy_unchanged(acc - 0.02, z, y)
    assert not changed and "keeps their order" in changed.why


def test_cpu_share_is_the_kernel_time_summed_from_the_trace_by_hand():
    events = json.loads(Path(runtime.__file__).with_name("resources").joinpath(
        "mixed_cuda_cpu_profile.json").read_text())
    kernel = [e for e in events if e["cat"] == "Node" and e["name"].endswith("_kernel_time")]
    cpu = sum(e["dur"] for e in kernel if e["args"]["provider"] == "CPUExecutionProvider")
    share = cpu / sum(e["dur"] for e in kernel)
    assert 0 < share < 1
    assert profiling.kernel_time_by_provider(events) == runtime.exercise_placement().time_us
    assert exercises.check_cpu_share(share, events)
    assert exercises.check_cpu_share(round(share, 3), events)
    as_percent = exercises.check_cpu_share(100 * share, events)
    assert not as_percent and "percentage" in as_percent.why
    calls = sum(e["args"]["provider"] == "CPUExecutionProvider" for e in kernel) / len(kernel)
    by_calls = exercises.check_cpu_share(calls, events)
    assert calls != pytest.approx(share, rel=0.01) and not by_calls and "node calls" in by_calls.why
    with_session = cpu / sum(e["dur"] for e in events)        # session loading counted as kernel time
    assert not exercises.check_cpu_share(with_session, events)


def test_profile_session_writes_a_trace_whose_kernels_all_ran_on_the_cpu(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), helper.make_node("Relu", ["y"], ["z"], name="relu")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.1] * 12)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    runtime.pin_ir_version(model)
    onnx.save(model, tmp_path / "tiny.onnx")
    events = profiling.profile_session(tmp_path / "tiny.onnx", {"x": np.ones((2, 4), np.float32)}, runs=3,
                                       folder=tmp_path / "trace")
    kernels = profiling.kernel_events(events)
    assert sorted({e["args"]["op_name"] for e in kernels}) == ["MatMul", "Relu"] and len(kernels) == 6
    assert set(profiling.kernel_time_by_provider(events)) == {"CPUExecutionProvider"}
    assert profiling.share(events) == 1.0 and list((tmp_path / "trace").glob("ort_profile*.json"))
    with pytest.raises(ValueError, match="no node-kernel events"):
        profiling.share([e for e in events if e.get("cat") != "Node"])
