"""The T4's precision path on a CPU: fp16 autocast plus a GradScaler through lab.train, and the choice of fp16 or
bf16 from a GPU's compute capability (faked: no GPU here)."""
import math

import pytest
import torch

from lab import checkpoint, data, get_profile, models, precision, train

SMOKE = get_profile("smoke")


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 0), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_a_t4_gets_fp16_and_an_ampere_or_newer_gpu_bf16(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.default_device() == "cuda"
    assert train.precision_for("cuda") == expected


@pytest.mark.parametrize("flags, expected", [({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_tile", "amx_bf16"}, "bf16"),
                                             ({"avx2", "avx512f", "avx512_vnni"}, "fp32"), (set(), "fp32")])
def test_a_cpu_gets_bf16_only_where_it_computes_bf16_natively(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert train.precision_for("cpu") == expected


def test_the_cpu_flags_are_read_from_this_machine():
    # the reference: /proc/cpuinfo itself, read here independently of lab.precision
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this OS: lab.precision then reports no flags and picks fp32")
    native = any(f in text.split() for f in precision.BF16_FLAGS)
    assert precision.cpu_has_bf16() is native
    assert train.precision_for("cpu") == ("bf16" if native else "fp32")


def test_bf16_training_on_the_cpu_is_deterministic_and_finite():
    runs = []
    for _ in range(2):
        model, tokenizer = models.load(SMOKE.model, seed=SMOKE.seed)
        history = train.train(model, tokenizer, data.load_splits(SMOKE), SMOKE, device="cpu", precision="bf16",
                              progress=False)
        assert history["precision"] == "bf16" and all(math.isfinite(x) for x in history["loss"])
        runs.append(checkpoint.fingerprint(checkpoint.weights(model)))
    assert runs[0] == runs[1]


def test_fp16_training_on_the_cpu_keeps_losses_finite_and_steps():
    model, tokenizer = models.load(SMOKE.model, seed=SMOKE.seed)
    before = checkpoint.fingerprint(checkpoint.weights(model))
    history = train.train(model, tokenizer, data.load_splits(SMOKE), SMOKE, device="cpu", precision="fp16",
                          progress=False)
    assert history["precision"] == "fp16"
    assert history["loss"] and all(math.isfinite(x) for x in history["loss"])
    assert checkpoint.fingerprint(checkpoint.weights(model)) != before           # the scaler let the steps through


def _one_step(loss_scale: float):
    """One lab.train step on the fp16 path with the loss multiplied by `loss_scale`: (weights changed, scale before,
    scale after)."""
    model, tokenizer = models.load(SMOKE.model, seed=SMOKE.seed)
    enc = data.encode(tokenizer, data.load_splits(SMOKE).train, SMOKE.max_length)
    optimizer = train.make_optimizer(model, SMOKE)
    scheduler = train.linear_schedule(optimizer, 0, 10)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    loss_fn = lambda m, batch, idx: m(**batch).loss * loss_scale            # noqa: E731
    before = scaler.get_scale()
    train.step(model, data.collate(enc, list(range(8))), torch.device("cpu"), "fp16", optimizer, scheduler, scaler,
                SMOKE.grad_clip, loss_fn, list(range(8)))
    changed = any(not torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    return changed, before, scaler.get_scale()


def test_an_inf_gradient_makes_the_scaler_skip_the_step_and_lower_its_scale():
    changed, before, after = _one_step(float("inf"))
    assert not changed                          # no weight moved: the step was skipped
    assert after == before * 0.5                # GradScaler's backoff factor


def test_a_finite_gradient_steps_and_keeps_the_scale():
    changed, before, after = _one_step(1.0)     # the control: the same step without the injected inf
    assert changed and after == before


def test_an_unknown_precision_is_refused_naming_the_valid_ones():
    model, tokenizer = models.load(SMOKE.model)
    with pytest.raises(ValueError, match="'fp8'.*fp32, bf16, fp16"):
        train.train(model, tokenizer, data.load_splits(SMOKE), SMOKE, precision="fp8", progress=False)
