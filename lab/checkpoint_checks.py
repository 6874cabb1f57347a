"""The checks lab.checkpoint promises, run for real: two runs with the same seed end equal, a reload in a fresh
process gives the same logits, and a run killed (SIGKILL) mid-epoch resumes to the very weights of one that never
stopped. Week 1's record (lab.recipes.week1) and `python -m lab verify` use them.

They run on a short training run of the profile (two epochs of six batches), so they take seconds with tiny
models and about a minute with MiniLM.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lab import checkpoint, data, models, train
from lab.record import scratch


def short_profile(profile):
    """Six batches per epoch, two epochs: long enough to checkpoint mid-epoch and resume across an epoch end."""
    return profile.but(train_size=6 * profile.batch_size, eval_size=2 * profile.batch_size, epochs=2)


def fresh_run(profile, device=None, **train_kwargs):
    """(model, tokenizer) trained with `profile` from its seed, no checkpoints: the reference run."""
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    train.train(model, tokenizer, data.load_splits(profile), profile, device=device, progress=False, **train_kwargs)
    return model, tokenizer


def reload_check(model, tokenizer, profile, folder) -> dict:
    """Save `model`, reload it in a fresh process, and compare logits on a fixed batch with torch.equal."""
    folder = Path(folder)
    checkpoint.save(folder / "reload", model, config=profile.to_dict(), position={})
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batch = data.collate(enc, list(range(min(16, len(enc)))))
    save_file({k: batch[k] for k in ("input_ids", "attention_mask")}, folder / "batch.safetensors")
    model.eval()
    with torch.no_grad():
        here = model(**{k: batch[k].to(model.device) for k in ("input_ids", "attention_mask")}).logits.cpu()
    with scratch.python(RELOAD_CHILD, str(folder / "reload"), str(folder / "batch.safetensors"),
                        str(model.device), str(folder / "logits.safetensors")) as child:   # Ctrl-C: killed, quiet
        if child.wait() != 0:
            raise RuntimeError(f"the reload process failed with exit code {child.returncode}")
    there = load_file(folder / "logits.safetensors")["logits"]
    return {"check": "reload in a fresh process: logits equal", "pass": torch.equal(here, there),
            "fingerprint": checkpoint.read_state(folder / "reload")["fingerprint"],
            "max_abs_diff": float((here - there).abs().max())}


RELOAD_CHILD = """
import sys, torch
from safetensors.torch import load_file, save_file
from lab import checkpoint, models
folder, batch_file, device, out = sys.argv[1:]
arch = checkpoint.read_state(folder)["architecture"]
model = models.load_model(arch["lab_model_key"], num_labels=arch["num_labels"])
checkpoint.load(folder, model)
model.to(device).eval()
batch = {k: v.to(device) for k, v in load_file(batch_file).items()}
with torch.no_grad():
    save_file({"logits": model(**batch).logits.cpu().contiguous()}, out)
"""


def resume_check(profile, folder, reference: str, every: int = 4, stall_at: int = 6) -> dict:
    """Train in a subprocess that checkpoints every `every` steps; SIGKILL it during step `stall_at` (mid-epoch,
    after un-checkpointed progress); resume here from its last checkpoint; compare with `reference`, the
    fingerprint of an uninterrupted same-seed run. The child stops inside step `stall_at` and says so, and only
    then is killed, so where the kill lands does not depend on timing."""
    folder = Path(folder)
    spec = json.dumps({"profile": profile.to_dict(), "folder": str(folder), "every": every, "stall_at": stall_at,
                       "deterministic": torch.are_deterministic_algorithms_enabled()})
    lines = []
    with scratch.python(CRASH_CHILD, spec, stdout=subprocess.PIPE) as child:     # Ctrl-C here: killed, quiet
        for line in child.stdout:
            lines.append(line.rstrip())
            if line.startswith("stalled"):
                os.kill(child.pid, signal.SIGKILL)       # a real kill: no handler, no cleanup, no flush
                break
        child.wait()
    if child.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the training subprocess ended with {child.returncode} instead of being killed; "
                           f"its output:\n" + "\n".join(lines))
    killed_at = checkpoint.latest(folder)
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    history = train.train(model, tokenizer, data.load_splits(profile), profile, checkpoint_dir=folder,
                          resume=True, progress=False)
    found = checkpoint.fingerprint(checkpoint.weights(model))
    return {"check": f"killed during step {stall_at}, resumed from {killed_at.name}", "pass": found == reference,
            "fingerprint": found, "reference": reference, "resumed_from": history["resumed_from"]}


CRASH_CHILD = """
import json, sys, time
from lab import checkpoint, config, data, models, train
spec = json.loads(sys.argv[1])
fields = dict(spec["profile"], bench_batch_sizes=tuple(spec["profile"]["bench_batch_sizes"]))
profile = config.Profile(**fields)
train.set_deterministic(spec["deterministic"])
model, tokenizer = models.load(profile.model, seed=profile.seed)
steps = 0
def stall(module, args):
    global steps
    if module.training:
        steps += 1
        if steps == spec["stall_at"]:
            print("stalled", flush=True)
            time.sleep(3600)                       # the parent kills us here
model.register_forward_pre_hook(stall)
train.train(model, tokenizer, data.load_splits(profile), profile, checkpoint_dir=spec["folder"],
            checkpoint_every=spec["every"], progress=False)
print("finished", flush=True)
"""


