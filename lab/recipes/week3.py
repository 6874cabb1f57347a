"""Week 3's record: every test snippet's predicted probability from week 1's full fine-tune and week 2's LoRA model.

    measured("week3/errors", week3.errors_record, profile=profile)

The record holds raw measurements only; every analysis (lab.errors) and every table and plot (lab.display.week3) is
computed from them, so an analysis can change without re-running a model.
"""
from __future__ import annotations

import torch

from lab import data, errors, lora, train


def errors_record(profile) -> dict:
    """P(fresh) for every test snippet from week 1's full fine-tune and week 2's LoRA model."""
    device = train.default_device()
    full, tokenizer = train.finetuned(profile, device=device)
    adapted, _ = lora.adapted(profile, device=device)
    test = data.load_splits(profile).test
    enc = data.encode(tokenizer, test, profile.max_length)
    out = {"n": len(enc), "labels": enc.labels, "lengths": enc.lengths(), "texts_sha256": errors.texts_sha256(test["text"]),
           "models": {}}
    for name, model in (("full fine-tune", full), ("LoRA", adapted)):
        res = train.evaluate(model, enc, device=device, logits=True)
        out["models"][name] = {"p_fresh": torch.softmax(res["logits"], -1)[:, 1].tolist(),
                               "accuracy": res["accuracy"], "macro_f1": res["macro_f1"]}
    return out
