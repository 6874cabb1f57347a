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
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lab.record import scratch

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
