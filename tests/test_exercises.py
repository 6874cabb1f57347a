"""The exercise checkers say right to a right answer, and wrong (with the reason) to a wrong one."""
from __future__ import annotations

import math

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


# p10-p90 ranges of +-5%: every pair of these latencies is distinguishable
ROWS = [{"variant": v, "accuracy": acc, "size_mb": 1.0,
         "latency": {1: {"median_ms": ms, "p10_ms": 0.95 * ms, "p90_ms": 1.05 * ms}}}
        for v, acc, ms in (("fp32", 0.80, 10.0), ("int8", 0.79, 4.0), ("student", 0.75, 5.0))]


def test_pareto_names_what_beats_an_extra_variant_and_what_is_missing():
    assert exercises.check_pareto(["fp32", "int8"], ROWS, 1)
    extra = exercises.check_pareto(["fp32", "int8", "student"], ROWS, 1)
    assert not extra and "student is beaten by int8" in extra.why
    missing = exercises.check_pareto(["fp32"], ROWS, 1)
    assert not missing and "int8 is missing" in missing.why
    assert "no variant is called 'gpu'" in exercises.check_pareto(["gpu"], ROWS, 1).why


@pytest.mark.parametrize("verdict", [exercises.Verdict(True, "x."), exercises.Verdict(False, "y.")])
def test_a_verdict_reads_as_a_sentence(verdict):
    assert str(verdict) in ("Right: x.", "Not yet: y.")
