"""lab.train and lab.budget on the smoke profile (tiny random-init BERT): each test takes seconds."""
import copy
import math

import numpy as np
import pytest
import torch

from lab import budget, checkpoint, data, get_profile, models, train
from lab.display import week1 as show1
from lab.recipes import week1

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def splits():
    return data.load_splits(SMOKE)


def run(profile=SMOKE, splits_=None, **kwargs):
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    history = train.train(model, tokenizer, splits_ or data.load_splits(profile), profile, progress=False, **kwargs)
    return model, tokenizer, history


# ---------------------------------------------------------------- metrics

def test_metrics_by_hand():
    # preds 1,1,0,0,1 vs labels 1,0,0,1,1: class 1 has tp=2 fp=1 fn=1 -> F1 2/3; class 0 has tp=1 fp=1 fn=1 -> 1/2
    m = train.metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        train.metrics([0, 1], [0, 1, 1])


def test_constant_predictor_matches_the_majority_baseline(splits):
    base = data.majority_baseline(splits.train, splits.test)
    m = train.metrics([base["label"]] * len(splits.test), splits.test["label"])
    assert m["accuracy"] == pytest.approx(base["accuracy"])
    assert m["macro_f1"] == pytest.approx(base["macro_f1"])


def test_evaluate_logits_match_unbatched_forward(splits):
    model, tokenizer = models.load(SMOKE.model, seed=0)
    enc = data.encode(tokenizer, splits.test, SMOKE.max_length)
    out = train.evaluate(model, enc, batch_size=8, logits=True, precision="fp32")   # exact arithmetic to compare
    with torch.no_grad():   # one example at a time, no padding at all: the reference for order and masking
        ref = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in enc.input_ids])
    torch.testing.assert_close(out["logits"], ref, atol=1e-5, rtol=1e-4)
    assert out["n"] == len(enc)
    assert out["accuracy"] == train.metrics(ref.argmax(-1).numpy(), enc.labels)["accuracy"]


# ---------------------------------------------------------------- schedule, precision

def test_schedule_matches_transformers_linear_warmup():
    from transformers import get_linear_schedule_with_warmup
    lrs = []
    for make in (lambda o: train.linear_schedule(o, 3, 10), lambda o: get_linear_schedule_with_warmup(o, 3, 10)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched, seq = make(opt), []
        for _ in range(10):
            seq.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        lrs.append(seq)
    assert lrs[0] == pytest.approx(lrs[1])
    assert lrs[0][0] == 0 and max(lrs[0]) == 1.0


def test_no_weight_decay_on_biases_and_layernorm():
    model, _ = models.load(SMOKE.model)
    decay, no_decay = train.make_optimizer(model, SMOKE).param_groups
    assert decay["weight_decay"] == SMOKE.weight_decay and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_fused_optimizer_steps_like_torchs_reference_adamw():
    # fused is a faster kernel, not another recipe: three steps on the same gradients must move the weights as
    # torch's for-loop AdamW (the reference implementation) does, decay groups included.
    model, _ = models.load(SMOKE.model)
    reference = copy.deepcopy(model)
    fused = train.make_optimizer(model, SMOKE)
    assert fused.defaults["fused"] is True
    groups = [{"params": [p for p in reference.parameters() if p.ndim >= 2], "weight_decay": SMOKE.weight_decay},
              {"params": [p for p in reference.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    plain = torch.optim.AdamW(groups, lr=SMOKE.lr, foreach=False)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(model.parameters(), reference.parameters()):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    start = models.load(SMOKE.model)[0]
    for p, q, p0 in zip(model.parameters(), reference.parameters(), start.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
        assert not torch.equal(p, p0)


# ---------------------------------------------------------------- the loop

def test_progress_bar_shows_steps_loss_and_samples_per_second(splits, capsys):
    steps = math.ceil(len(splits.train) / SMOKE.batch_size)
    for progress in (False, True):     # off: the control, nothing shown
        model, tokenizer = models.load(SMOKE.model, seed=SMOKE.seed)
        train.train(model, tokenizer, splits, SMOKE, progress=progress)
        err = capsys.readouterr().err
        shown = f"{steps}/{steps}" in err and "loss=" in err and "samples_s=" in err
        assert shown == progress, err[-500:]


def test_history_accounts_for_every_step_and_example(splits):
    model, _, h = run(SMOKE.but(epochs=2), splits)
    steps = math.ceil(len(splits.train) / SMOKE.batch_size)
    assert h["total_steps"] == h["step"] == len(h["loss"]) == len(h["lr"]) == len(h["step_s"]) == 2 * steps
    assert sum(h["step_padded_tokens"]) == h["clock"]["padded_tokens"]
    assert [e["epoch"] for e in h["epochs"]] == [1, 2] and [e["step"] for e in h["epochs"]] == [steps, 2 * steps]
    assert h["clock"]["samples"] == 2 * len(splits.train)
    assert h["clock"]["tokens"] <= h["clock"]["padded_tokens"]
    assert h["clock"]["tokens"] == 2 * sum(data.encode(models.load_tokenizer(SMOKE.model), splits.train,
                                                       SMOKE.max_length).lengths())
    assert all(0 <= e["val_accuracy"] <= 1 for e in h["epochs"])
    assert h["lr"][0] == 0.0 and max(h["lr"]) == pytest.approx(SMOKE.lr)   # warmup from zero to the peak
    assert h["lr"][-1] < h["lr"][-2]                                           # then decay


def test_training_learns_a_learnable_task(splits):
    # Label = "does the text contain 'good'": tiny random BERT must fit it on the training set.
    rows = [(f"a good film {i}" if i % 2 else f"a bad film {i}", i % 2) for i in range(64)]
    import pandas as pd
    df = pd.DataFrame(rows, columns=["text", "label"])
    toy = data.Splits(df, df, df)
    _, _, h = run(SMOKE.but(epochs=6, lr=3e-3, train_size=None), toy)
    assert h["epochs"][-1]["val_accuracy"] == 1.0
    assert np.mean(h["loss"][-4:]) < np.mean(h["loss"][:4]) - 0.01


def test_same_seed_same_weights_other_seed_other_weights(splits):
    a, _, _ = run(SMOKE, splits)
    b, _, _ = run(SMOKE, splits)
    c, _, _ = run(SMOKE.but(seed=1), splits)
    fa, fb, fc = (checkpoint.fingerprint(checkpoint.weights(m)) for m in (a, b, c))
    assert fa == fb
    assert fa != fc


def test_finetuned_trains_once_then_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RUNS", str(tmp_path))
    first, _ = train.finetuned(SMOKE)
    calls = []
    monkeypatch.setattr(train, "step", lambda *a: calls.append(1))     # a reload must not train
    second, _ = train.finetuned(SMOKE)
    assert not calls
    assert checkpoint.fingerprint(checkpoint.weights(first)) == checkpoint.fingerprint(checkpoint.weights(second))


def test_finetuned_retrains_when_the_profile_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RUNS", str(tmp_path))
    longer = SMOKE.but(epochs=3)
    train.finetuned(longer)                                  # leaves step-000012 in the run folder
    changed = longer.but(epochs=1, lr=SMOKE.lr / 2)            # same folder name, fewer steps
    model, tokenizer = train.finetuned(changed)
    last = checkpoint.latest(train.run_dir(changed))
    assert last.name == "step-000004"                        # the older run's step-000012 is gone
    assert checkpoint.read_state(last)["config"]["lr"] == changed.lr
    ref, _, _ = run(changed)
    assert checkpoint.fingerprint(checkpoint.weights(model)) == checkpoint.fingerprint(checkpoint.weights(ref))


def test_finetune_record_is_plain_json_with_projection(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv("LAB_RUNS", str(tmp_path))
    rec = week1.finetune_record(SMOKE)
    assert json.loads(json.dumps(rec)) == rec
    assert rec["test"]["n"] == rec["data"]["test"] and set(rec["baseline"]) >= {"accuracy", "macro_f1"}
    proj = rec["projection"]
    assert proj["workload"]["examples"] > rec["data"]["train"]      # the full split, not the smoke subset
    assert proj["fits"] == (proj["projected_total_s"] <= proj["budget_s"])
    assert checkpoint.latest(train.run_dir(SMOKE)) is not None       # the checkpoint later weeks start from
    show1.learning_curve(rec["history"])


# ---------------------------------------------------------------- budget

@pytest.mark.parametrize("name, peak", [("Tesla T4", 65.0), ("NVIDIA A100-SXM4-40GB", 312.0),
                                        ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 80GB HBM3", 989.0),
                                        ("NVIDIA L4", 121.0), ("Some Future GPU", None), (None, None)])
def test_peak_tflops_table(name, peak):
    assert budget.peak_tflops(name) == peak


def test_padded_tokens_counts_what_training_computes(splits):
    model, tokenizer, h = run(SMOKE.but(epochs=2), splits)
    lengths = data.encode(tokenizer, splits.train, SMOKE.max_length).lengths()
    steps, tokens = budget.padded_tokens(lengths, SMOKE.but(epochs=2), h["batching"])
    assert (steps, tokens) == (h["step"], h["clock"]["padded_tokens"])


def test_projection_scales_measured_time_by_tokens():
    # Four steps of 250 tokens: three at 2.5 s, one slowed tenfold by another process. The median ignores it.
    history = {"clock": {"train_s": 32.5, "padded_tokens": 1000}, "step_s": [2.5, 2.5, 25.0, 2.5],
               "step_padded_tokens": [250] * 4, "n_params": 3_000_000, "n_params_non_embedding": 1_000_000,
               "val_examples": 100,
               "epochs": [{"eval_s": 2.0}], "batching": {"group_by_length": False, "pool": 8}}
    profile = SMOKE.but(epochs=1, batch_size=2)
    p = budget.project(history, budget.Workload(profile, (10,) * 400, eval_examples=50), gpu_name="Tesla T4",
                       budget_s=100)
    assert p["workload"]["padded_tokens"] == 4000 and p["workload"]["steps"] == 200
    assert p["projected_train_s"] == pytest.approx(40.0)                  # 10 s per 1,000 tokens x 4,000
    assert p["projected_total_s"] == pytest.approx(40.0 + 2.0 / 100 * 50)
    assert p["fits"] is True
    assert p["mean_s_per_padded_token"] == pytest.approx(32.5 / 1000)
    assert p["achieved_tflops"] == pytest.approx(6 * 1e6 * 1000 / 32.5 / 1e12)    # non-embedding N, not 3M
    assert p["fraction_of_peak"] == pytest.approx(p["achieved_tflops"] / 65.0)


def test_week1_and_the_scorecard_project_one_workload_definition_and_say_whose_recipe():
    tokenizer = models.load_tokenizer("tiny-bert")
    cpu, gpu = (budget.full_finetune(get_profile(n), tokenizer) for n in ("cpu", "gpu"))
    assert cpu.lengths == gpu.lengths and len(cpu.lengths) == 10_201    # the same snippets, the whole split
    batching = {"group_by_length": True, "pool": 8}
    a, b = cpu.counts(batching), gpu.counts(batching)
    assert (a["epochs"], b["epochs"]) == (2, 3)                          # the recipes differ, and say so
    assert "cpu profile's recipe" in a["question"] and "gpu profile's recipe" in b["question"]
