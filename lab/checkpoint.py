"""Checkpoints that resume bit-identically and that are safe to swap with a classmate.

A checkpoint is a folder:

    model.safetensors   the weights
    state.safetensors   every other tensor: optimizer moments, torch/CUDA RNG states
    state.json          everything else: config, architecture, position in the data order, scheduler, scaler,
                        Python/NumPy RNG states, the history so far, the SHA-256 fingerprints of the tensors in
                        both .safetensors files, and a SHA-256 of its own content

Nothing is ever unpickled. A pickle can run arbitrary code when loaded, and students exchange checkpoints, so
tensors come only from safetensors (a header plus raw bytes) and everything else only from JSON. A file that is
not what its name says fails with a CheckpointError naming the file, never by running it.

Every file is integrity-checked on load (each safetensors file against its fingerprint in state.json, state.json
against its own SHA-256), so a flipped byte anywhere fails with a CheckpointError naming the file instead of
resuming into different weights.

Writes are atomic: the folder is written under a temporary name that says which process writes it, and renamed
into place, so a crash mid-write leaves the previous checkpoint as the latest one, and another run's cleanup
(prune) never deletes a write in progress.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lab import scratch

# 2: state.json holds the fingerprint of state.safetensors and its own SHA-256 (1 checked the weights only)
FORMAT = 2
MODEL_FILE, TENSORS_FILE, STATE_FILE = "model.safetensors", "state.safetensors", "state.json"
# The config fields that decide which weights fit which model: compared on load, differences listed.
ARCH_FIELDS = ("lab_model_key", "model_type", "architectures", "hidden_size", "num_hidden_layers",
               "num_attention_heads", "intermediate_size", "vocab_size", "max_position_embeddings", "num_labels")


class CheckpointError(RuntimeError):
    """The checkpoint cannot be used: missing, corrupt, or not a checkpoint. The message names the file."""


class Mismatch(CheckpointError):
    """The checkpoint is fine, but it belongs to another architecture or another training config."""


# ---------------------------------------------------------------- fingerprint

def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes, in name order: equal iff the weights are bit-identical."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())   # bytes view works for every dtype (bf16 too)
    return h.hexdigest()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def architecture(model) -> dict:
    return {k: getattr(model.config, k, None) for k in ARCH_FIELDS}   # getattr: num_labels is a property


# ---------------------------------------------------------------- RNG and optimizer state as tensors + JSON

def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {"python": [version, list(mt), gauss],
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, plain


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    version, mt, gauss = plain["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def optimizer_state(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """torch's optimizer state_dict split into tensors ('optim.<param index>.<name>') and JSON (the rest)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def set_optimizer_state(optimizer, tensors: dict[str, torch.Tensor], plain: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in plain["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in plain["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})   # moves tensors to the params' device


# ---------------------------------------------------------------- save

def save(path, model, *, config: dict, position: dict, optimizer=None, scheduler=None, scaler=None,
         history: dict | None = None) -> Path:
    """Write a checkpoint folder at `path`, atomically. Returns the path."""
    path = Path(path)
    model_tensors = weights(model)
    state_tensors, rng_plain = rng_state()
    optim_plain = None
    if optimizer is not None:
        optim_tensors, optim_plain = optimizer_state(optimizer)
        state_tensors.update(optim_tensors)
    state = {
        "format": FORMAT,
        "fingerprint": fingerprint(model_tensors),
        "state_fingerprint": fingerprint(state_tensors),
        "architecture": architecture(model),
        "config": config,
        "position": position,
        "optimizer": optim_plain,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_plain,
        "history": history,
    }
    state["sha256"] = _self_hash(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / scratch.owned_name(path.name)      # names this process: no other run's prune deletes it
    tmp.mkdir(mode=0o755)              # a checkpoint is meant to be shared
    try:
        save_file(model_tensors, tmp / MODEL_FILE, metadata={"fingerprint": state["fingerprint"]})
        save_file(state_tensors, tmp / TENSORS_FILE, metadata={"fingerprint": state["state_fingerprint"]})
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        for f in tmp.iterdir():        # on disk before the rename, so a power cut cannot leave a renamed husk
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        scratch.replace_dir(tmp, path)  # readers see the old folder or the whole new one, never a part
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def latest(folder) -> Path | None:
    """The newest complete checkpoint ('step-NNNNNN') in a run folder, or None. Half-written ones are '.tmp'."""
    folder = Path(folder)
    steps = sorted(folder.glob("step-[0-9]*")) if folder.is_dir() else []
    return steps[-1] if steps else None


def prune(folder, keep: int = 2) -> None:
    """Delete all but the newest `keep` checkpoints of a run, and what killed writers left (only theirs: a
    temporary folder whose writer is alive is another run's write in progress)."""
    folder = Path(folder)
    scratch.restore_aside(folder)
    steps = sorted(folder.glob("step-[0-9]*"))
    for old in steps[:max(0, len(steps) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- load

def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete or the path is wrong")
    try:
        return load_file(file)         # safetensors: a JSON header and raw bytes, no code
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file} is not a readable safetensors file ({e}): it is truncated or corrupt. "
                              f"Use another checkpoint of the run, or retrain.") from None


def _self_hash(state: dict) -> str:
    """SHA-256 of state.json's content without its own 'sha256' field (canonical JSON: sorted keys)."""
    rest = {k: v for k, v in state.items() if k != "sha256"}
    rest = json.loads(json.dumps(rest))     # as a later read sees it: int keys become strings, tuples lists
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _check_fingerprint(file: Path, tensors: dict[str, torch.Tensor], expected: str) -> None:
    found = fingerprint(tensors)
    if found != expected:
        raise CheckpointError(f"{file}: the tensors' SHA-256 is {found[:16]}..., but {STATE_FILE} records "
                              f"{expected[:16]}...: the file is corrupt or was replaced. Use another checkpoint "
                              f"of the run (delete this folder), or retrain.")


def read_state(path) -> dict:
    """state.json of a checkpoint folder, checked for format and against its own SHA-256."""
    file = Path(path) / STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: {path} is not a checkpoint folder, or its write was interrupted")
    try:
        state = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON ({e}): it is truncated or corrupt") from None
    if isinstance(state, dict) and state.get("format") == 1:
        raise Mismatch(f"{file}: format 1, written by an older lab that checked the weights only; "
                       f"train afresh (resume=False) to replace it")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{file}: format {found!r}, expected {FORMAT}: not a lab checkpoint of this version")
    if state.get("sha256") != _self_hash(state):
        raise CheckpointError(f"{file}: its content does not match its SHA-256 ({str(state.get('sha256'))[:16]}...): "
                              f"it was edited or is corrupt. Use another checkpoint of the run, or retrain.")
    return state


def differences(saved: dict, current: dict) -> list[str]:
    """'field: saved -> current' for every field that differs."""
    return [f"{k}: {saved.get(k)!r} (checkpoint) vs {current.get(k)!r} (now)"
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def load(path, model, *, optimizer=None, scheduler=None, scaler=None, config: dict | None = None,
         restore_rng: bool = False) -> dict:
    """Load a checkpoint into `model` (and the training state objects given). Returns state.json's contents.

    Checks, in order: the files are readable and state.json matches its SHA-256; the architecture matches the
    model; `config`, when given, matches the saved one (a resume must continue the same run); the weights, and the
    optimizer/RNG tensors when they are loaded, match their SHA-256 fingerprints.
    """
    path = Path(path)
    state = read_state(path)
    arch_diff = differences(state["architecture"], architecture(model))
    if arch_diff:
        raise Mismatch(f"{path} holds another architecture than this model; differing fields:\n  "
                       + "\n  ".join(arch_diff))
    if config is not None:
        cfg_diff = differences(state["config"], json.loads(json.dumps(config)))
        if cfg_diff:
            raise Mismatch(f"cannot resume from {path}: the training config changed; differing fields:\n  "
                           + "\n  ".join(cfg_diff) + "\nRestore these values, or start a fresh run (resume=False).")
    tensors = _read_tensors(path / MODEL_FILE)
    _check_fingerprint(path / MODEL_FILE, tensors, state["fingerprint"])
    missing, unexpected = model.state_dict().keys() - tensors.keys(), tensors.keys() - model.state_dict().keys()
    if missing or unexpected:
        raise Mismatch(f"{path / MODEL_FILE} does not fit the model: missing {sorted(missing)[:5]}, "
                       f"unexpected {sorted(unexpected)[:5]}")
    model.load_state_dict(tensors)
    if optimizer is not None or restore_rng:
        extra = _read_tensors(path / TENSORS_FILE)
        _check_fingerprint(path / TENSORS_FILE, extra, state["state_fingerprint"])
        if optimizer is not None:
            if state["optimizer"] is None:
                raise CheckpointError(f"{path / STATE_FILE} holds no optimizer state: it cannot resume training")
            set_optimizer_state(optimizer, extra, state["optimizer"])
        if restore_rng:
            set_rng_state(extra, state["rng"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    return state


# ---------------------------------------------------------------- the checks this module promises
# Run on a short training run of the profile (two epochs of six batches), so that they take seconds with tiny
# models and about a minute with MiniLM. The training loop is lab.train, imported inside the functions because
# lab.train itself imports this module.

def short_profile(profile):
    """Six batches per epoch, two epochs: long enough to checkpoint mid-epoch and resume across an epoch end."""
    return profile.but(train_size=6 * profile.batch_size, eval_size=2 * profile.batch_size, epochs=2)


def _fresh_run(profile, device=None, **train_kwargs):
    from lab import data, models, train
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    train.train(model, tokenizer, data.load_splits(profile), profile, device=device, progress=False, **train_kwargs)
    return model, tokenizer


def reload_check(model, tokenizer, profile, folder) -> dict:
    """Save `model`, reload it in a fresh process, and compare logits on a fixed batch with torch.equal."""
    from lab import data
    folder = Path(folder)
    save(folder / "reload", model, config=profile.to_dict(), position={})
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batch = data.collate(enc, list(range(min(16, len(enc)))))
    save_file({k: batch[k] for k in ("input_ids", "attention_mask")}, folder / "batch.safetensors")
    model.eval()
    with torch.no_grad():
        here = model(**{k: batch[k].to(model.device) for k in ("input_ids", "attention_mask")}).logits.cpu()
    child = scratch.python(RELOAD_CHILD, str(folder / "reload"), str(folder / "batch.safetensors"),
                    str(model.device), str(folder / "logits.safetensors"))
    if child.wait() != 0:
        raise RuntimeError(f"the reload process failed with exit code {child.returncode}")
    there = load_file(folder / "logits.safetensors")["logits"]
    return {"check": "reload in a fresh process: logits equal", "pass": torch.equal(here, there),
            "fingerprint": read_state(folder / "reload")["fingerprint"],
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
    from lab import data, models, train
    folder = Path(folder)
    spec = json.dumps({"profile": profile.to_dict(), "folder": str(folder), "every": every, "stall_at": stall_at,
                       "deterministic": torch.are_deterministic_algorithms_enabled()})
    child = scratch.python(CRASH_CHILD, spec, stdout=subprocess.PIPE)
    lines = []
    for line in child.stdout:
        lines.append(line.rstrip())
        if line.startswith("stalled"):
            os.kill(child.pid, signal.SIGKILL)       # a real kill: no handler, no cleanup, no flush
            break
    child.wait()
    if child.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the training subprocess ended with {child.returncode} instead of being killed; "
                           f"its output:\n" + "\n".join(lines))
    killed_at = latest(folder)
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    history = train.train(model, tokenizer, data.load_splits(profile), profile, checkpoint_dir=folder,
                          resume=True, progress=False)
    found = fingerprint(weights(model))
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


def checks_record(profile) -> dict:
    """The page's table: same-seed runs, reload in a fresh process, resume after a kill. On a GPU, the same-seed
    and resume checks run with deterministic algorithms off (the default) and on."""
    from lab import train
    short = short_profile(profile)
    device = train.default_device()
    rows = []
    for deterministic in ([False, True] if device == "cuda" else [False]):
        train.set_deterministic(deterministic)
        mode = f"{device}, deterministic algorithms {'on' if deterministic else 'off'}"
        a, tokenizer = _fresh_run(short, device)
        b, _ = _fresh_run(short, device)
        fa, fb = fingerprint(weights(a)), fingerprint(weights(b))
        rows.append({"check": "two runs with the same seed: equal weights", "mode": mode, "pass": fa == fb,
                     "fingerprint": fa, "reference": fb})
        with scratch.directory("checks") as tmp:         # a kill leaves it to the next run's cleanup
            rows.append({"mode": mode, **resume_check(short, Path(tmp) / "run", reference=fa)})
            if not deterministic:
                rows.append({"mode": mode, **reload_check(a, tokenizer, short, tmp)})
    train.set_deterministic(False)
    steps = short.epochs * -(-short.train_size // short.batch_size)      # ceiling division
    return {"profile": short.to_dict(), "steps": steps, "rows": rows}
