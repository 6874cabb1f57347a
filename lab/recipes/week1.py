"""Week 1's records: a fine-tune of the profile's model, and the checks that its checkpoints keep their promises.

    measured("week1/finetune", week1.finetune_record, profile=profile)   # load, train, evaluate, save, project
    measured("week1/checks", week1.checks_record, profile=profile)       # same seed, reload, resume after a kill
"""
from __future__ import annotations

from pathlib import Path

from lab import budget, checkpoint, checkpoint_checks, data, models, train
from lab.record import scratch


def finetune_record(profile) -> dict:
    """A fresh fine-tune (also stored as the profile's checkpoint for later weeks), its test metrics against the
    majority baseline, throughput, and the full-workload budget projection."""
    device = train.default_device()
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    splits = data.load_splits(profile)
    history = train.train(model, tokenizer, splits, profile, device=device, checkpoint_dir=train.run_dir(profile),
                          checkpoint_every=train.checkpoint_every(profile))      # resume=False: a fresh measurement
    test = train.evaluate(model, data.encode(tokenizer, splits.test, profile.max_length), device=device)
    return {
        "model": {"key": profile.model, "n_params": history["n_params"]},
        "data": splits.sizes(),
        "history": history,
        "test": test,
        "baseline": data.majority_baseline(splits.train, splits.test),
        # the whole split, not the subset: this profile's full fine-tune (lab.budget.Workload says which question)
        "projection": budget.project(history, budget.full_finetune(profile, tokenizer),
                                     gpu_name=train.gpu_name(device)),
        "fingerprint": checkpoint.fingerprint(checkpoint.weights(model)),
    }


def checks_record(profile) -> dict:
    """Same-seed runs, reload in a fresh process, resume after a kill. On a GPU, the same-seed and resume checks run
    with deterministic algorithms off (the default) and on."""
    short = checkpoint_checks.short_profile(profile)
    device = train.default_device()
    rows = []
    for deterministic in ([False, True] if device == "cuda" else [False]):
        train.set_deterministic(deterministic)
        mode = f"{device}, deterministic algorithms {'on' if deterministic else 'off'}"
        a, tokenizer = checkpoint_checks.fresh_run(short, device)
        b, _ = checkpoint_checks.fresh_run(short, device)
        fa, fb = (checkpoint.fingerprint(checkpoint.weights(m)) for m in (a, b))
        rows.append({"check": "two runs with the same seed: equal weights", "mode": mode, "pass": fa == fb,
                     "fingerprint": fa, "reference": fb})
        with scratch.directory("checks") as tmp:         # a kill leaves it to the next run's cleanup
            rows.append({"mode": mode, **checkpoint_checks.resume_check(short, Path(tmp) / "run", reference=fa)})
            if not deterministic:
                rows.append({"mode": mode, **checkpoint_checks.reload_check(a, tokenizer, short, tmp)})
    train.set_deterministic(False)
    steps = short.epochs * -(-short.train_size // short.batch_size)      # ceiling division
    return {"profile": short.to_dict(), "steps": steps, "rows": rows}
