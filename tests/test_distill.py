"""lab.distill: the loss against a hand computation, the teacher run once and cached, and lab.train's loss hook."""
import math

import pytest
import torch
import torch.nn.functional as F

from lab import config, data, distill, models, train

SMOKE = config.SMOKE


def test_the_distillation_loss_equals_a_hand_computed_value():
    # student logits (1, 0), teacher (0, 1), label 0, T = 2, alpha = 0.5:
    #   softened: student (e^.5, 1) / (e^.5 + 1), teacher the same reversed; KL(teacher || student) = (p - q) * 0.5
    #   with p = e^.5 / (e^.5 + 1) and q = 1 - p, since log(p / q) = 0.5; cross-entropy = log(1 + e^-1)
    p = math.exp(0.5) / (math.exp(0.5) + 1)
    kl = (p - (1 - p)) * 0.5
    expected = 0.5 * 4 * kl + 0.5 * math.log(1 + math.exp(-1))
    got = distill.loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
                       distill.Settings(temperature=2.0, alpha=0.5))
    assert got.item() == pytest.approx(expected, abs=1e-6)        # 0.40155


def test_alpha_zero_is_training_on_labels_only():
    s, t, y = torch.randn(8, 2), torch.randn(8, 2), torch.randint(0, 2, (8,))
    got = distill.loss(s, t, y, distill.Settings(temperature=3.0, alpha=0.0))
    assert torch.allclose(got, F.cross_entropy(s, y))


def test_a_student_that_matches_the_teacher_has_no_soft_loss():
    t = torch.randn(8, 2)
    got = distill.loss(t.clone(), t, torch.zeros(8, dtype=torch.long), distill.Settings(temperature=2.0, alpha=1.0))
    assert got.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0, "alpha": 0.5}, "temperature must be > 0, got 0"),
    ({"temperature": 2, "alpha": 1.5}, r"alpha must be within \[0, 1\], got 1.5")])
def test_bad_settings_say_what_was_given(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distill.Settings(**kwargs)


@pytest.fixture(scope="module")
def teacher_and_data():
    model, tokenizer = models.load("tiny-bert", seed=0)
    enc = data.encode(tokenizer, data.load_splits(SMOKE).train, SMOKE.max_length)
    return model, enc


def test_the_teacher_runs_once_then_its_logits_come_from_the_cache(teacher_and_data, tmp_path, monkeypatch):
    teacher, enc = teacher_and_data
    calls = []
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: calls.append(1) or evaluate(*a, **k))
    first = distill.cached_logits(teacher, enc, tmp_path)
    again = distill.cached_logits(teacher, enc, tmp_path)
    assert len(calls) == 1 and torch.equal(first, again) and first.shape == (len(enc), 2)


def test_a_changed_teacher_recomputes_the_cached_logits(teacher_and_data, tmp_path, monkeypatch):
    teacher, enc = teacher_and_data
    distill.cached_logits(teacher, enc, tmp_path)
    other = models.load_model("tiny-bert", seed=1)       # another head: another teacher
    calls = []
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: calls.append(1) or evaluate(*a, **k))
    distill.cached_logits(other, enc, tmp_path)
    assert len(calls) == 1


def test_lab_train_hands_the_loss_the_batchs_example_indices(teacher_and_data):
    _, enc = teacher_and_data
    seen = []

    def spy(model, batch, idx):
        assert batch["labels"].tolist() == [enc.labels[i] for i in idx]
        seen.extend(idx)
        return model(**batch).loss

    model, tokenizer = models.load("tiny-bert", seed=0)
    train.train(model, tokenizer, data.load_splits(SMOKE), SMOKE, progress=False, loss_fn=spy)
    assert sorted(seen) == list(range(len(enc)))          # one epoch: every example once


def test_a_student_trains_through_lab_train_on_cached_teacher_logits(teacher_and_data, tmp_path):
    teacher, enc = teacher_and_data
    logits = distill.cached_logits(teacher, enc, tmp_path)
    student, tokenizer = models.load("tiny-bert", seed=3)
    history = train.train(student, tokenizer, data.load_splits(SMOKE), SMOKE, progress=False,
                          loss_fn=distill.loss_fn(logits, distill.Settings(temperature=2.0, alpha=0.5)))
    assert all(math.isfinite(x) for x in history["loss"]) and history["step"] == 4


def test_the_student_is_minilms_first_two_layers():
    full, student = models.load_model("minilm"), models.load_model(distill.STUDENTS["cpu"])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    last = student.bert.encoder.layer[1].output.dense.weight
    assert torch.equal(last, full.bert.encoder.layer[1].output.dense.weight)
