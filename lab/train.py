"""Fine-tune a sequence classifier: a compact loop you can read in one sitting.

    model, tokenizer = models.load("minilm")
    history = train(model, tokenizer, data.load_splits(profile), profile)

AdamW with linear warmup then linear decay, gradient clipping, length-grouped batches with dynamic padding
(lab.data.batch_order / collate), evaluation each epoch against the majority baseline. Precision follows the
hardware (lab.precision): bf16 autocast on CPUs with native bf16 (AVX-512 bf16, AMX) and on GPUs that have it
(compute capability 8.0+: A100, L4, H100); fp16 autocast plus a gradient scaler on older GPUs such as the T4, whose
fp16 gradients would underflow unscaled; fp32 elsewhere (most laptops).

Every source of randomness is seeded (model init, dropout, batch order), and a checkpoint holds the position in
the data order and every RNG state, so a run resumed after a crash ends with the same weights, bit for bit on the
CPU, as one that never stopped (lab.checkpoint, tests/test_checkpoint.py).
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from lab import checkpoint, data, models
from lab.record import fingerprint, lock, paths
# default_device and precision_for are also called as train.*: one import for the pages
from lab.precision import PRECISIONS, autocast, default_device, precision_for  # noqa: F401
from lab.record.progress import bar as progress_bar

BASELINE_NOTE = "majority class of the training split"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)   # also seeds every CUDA device


def set_deterministic(on: bool) -> None:
    """Deterministic GPU kernels (slower); cuBLAS needs its workspace setting before its first call."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on


# ---------------------------------------------------------------- metrics and evaluation

def metrics(preds, labels) -> dict:
    """Accuracy and macro-F1 (scikit-learn's: the unweighted mean of per-class F1 over the classes present in
    labels or preds; a class never predicted scores F1 = 0 rather than a warning)."""
    from sklearn.metrics import accuracy_score, f1_score
    preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
    if preds.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"need equally many predictions and labels, at least one: got {preds.shape} and "
                         f"{labels.shape}")
    return {"accuracy": float(accuracy_score(labels, preds)),
            "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0))}


@torch.no_grad()
def evaluate(model, enc: data.Encoded, batch_size: int = 64, device=None, logits: bool = False,
             precision: str | None = None) -> dict:
    """Accuracy and macro-F1 on encoded examples; `logits=True` also returns them (n, classes), in input order.
    precision: 'fp32', 'bf16' or 'fp16' instead of the device's own (precision_for), as in train()."""
    device = device or next(model.parameters()).device
    precision = precision or precision_for(str(device))
    model.eval()
    out = torch.empty((len(enc), model.config.num_labels))
    for idx, batch in data.sorted_batches(enc, batch_size):
        with autocast(device, precision):
            out[idx] = model(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device)).logits.float().cpu()
    result = {**metrics(out.argmax(-1).numpy(), enc.labels), "n": len(enc)}
    if logits:
        result["logits"] = out
    return result


# ---------------------------------------------------------------- the loop

def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """lr factor rises linearly 0 -> 1 over the warmup, then falls linearly to 0 at the last step."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model, profile):
    # No weight decay on biases and LayerNorm weights (the 1-D tensors): the usual BERT recipe, as in HF Trainer.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": profile.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    # fused: one kernel updates every tensor in one pass, where torch's default on the CPU loops over the ~100
    # tensors, several passes each (MiniLM, 2 Xeon cores: ~20 ms against ~115 ms a step, ~8% of a step on random
    # batches; benchmarks/results/train_throughput.md). The HF Trainer's default too (adamw_torch_fused). With
    # the fp16 GradScaler it also skips an overflowed step inside the kernel instead of syncing to ask.
    fused = {p.device.type for p in params} <= {"cpu", "cuda"}
    return torch.optim.AdamW(groups, lr=profile.lr, fused=fused or None)


def batching(profile) -> dict:
    """Length grouping on by default; `profile.but(extra={"group_by_length": False})` turns it off."""
    return {"group_by_length": profile.extra.get("group_by_length", True), "pool": profile.extra.get("pool", data.POOL)}


def data_digest(enc: data.Encoded) -> str:
    """SHA-256 of the exact token ids and labels: equal iff the encoded data is."""
    return hashlib.sha256(repr((enc.input_ids, enc.labels)).encode()).hexdigest()


# The code that trains a checkpoint: this loop and the modules that build and train models through it (LoRA adapters,
# distillation), with every library module they import (lab.record.fingerprint). A stored run is reused, or resumed,
# only while that code is the code now: otherwise a record re-measured after an edit here would measure a checkpoint
# that the old code trained.
TRAINING_CODE = ("lab.train", "lab.lora", "lab.distill")


@functools.cache
def training_code() -> str:
    """Fingerprint (16 hex digits) of TRAINING_CODE and everything it imports: part of every run's config."""
    return fingerprint.fingerprint(sorted({m for root in TRAINING_CODE for m in fingerprint.code_modules(root)}))[:16]


def run_config(profile, enc: data.Encoded, precision: str) -> dict:
    """What a resumed run must share with the run it continues: the profile, the batching, the exact data, the
    precision and the training code."""
    return {**profile.to_dict(), **batching(profile), "precision": precision,
            "train_examples": len(enc), "train_data_sha256": data_digest(enc), "code": training_code()}


def train(model, tokenizer, splits, profile, *, device=None, checkpoint_dir=None, checkpoint_every=None,
          resume=False, progress=True, loss_fn=None, precision=None) -> dict:
    """Fine-tune `model` in place on splits.train; evaluate on splits.validation after each epoch.

    checkpoint_dir: where 'step-NNNNNN' checkpoints go: every `checkpoint_every` optimizer steps, at each epoch's
    end, on Ctrl-C, and when done. resume=True continues from the newest one there (a finished run just reloads).
    Returns the history: per-step loss and lr, per-epoch validation metrics, time and throughput.
    One run at a time per checkpoint_dir: a second one waits for the first (lab.record.lock), saying which process it is.
    loss_fn(model, batch, idx) replaces the model's own cross-entropy; idx are the batch's example indices into
    splits.train, so a loss can look up per-example targets (week 5's cached teacher logits, lab.distill).
    precision: 'fp32', 'bf16' or 'fp16' instead of the device's own (precision_for); 'fp16' on a CPU runs the T4's
    path (fp16 autocast and a gradient scaler) where a test can run it.
    """
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}, or None for the device's own")
    args = (model, tokenizer, splits, profile, device)
    if not checkpoint_dir:
        return _train(*args, None, checkpoint_every, resume, progress, loss_fn, precision)
    with lock.hold(checkpoint_dir, "training"):
        return _train(*args, checkpoint_dir, checkpoint_every, resume, progress, loss_fn, precision)


def _train(model, tokenizer, splits, profile, device, checkpoint_dir, checkpoint_every, resume, progress,
           loss_fn, precision) -> dict:
    device = torch.device(device or default_device())
    seed_everything(profile.seed)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    enc_val = data.encode(tokenizer, splits.validation, profile.max_length)
    lengths = enc.lengths()
    steps_per_epoch = math.ceil(len(enc) / profile.batch_size)
    total_steps = steps_per_epoch * profile.epochs
    model.to(device)
    optimizer = make_optimizer(model, profile)
    scheduler = linear_schedule(optimizer, math.ceil(profile.warmup_ratio * total_steps), total_steps)
    precision = precision or precision_for(str(device))
    # bf16 and fp32 need no loss scaling; on the device's own type, so the T4's scaler also runs on a CPU
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    config = run_config(profile, enc, precision)
    history = {"device": str(device), "precision": precision, "n_params": models.n_params(model),
               "n_params_non_embedding": models.n_params_non_embedding(model),
               "steps_per_epoch": steps_per_epoch, "total_steps": total_steps, "step": 0, "batching": batching(profile),
               "val_examples": len(enc_val), "loss": [], "lr": [], "step_s": [], "step_padded_tokens": [],
               "epochs": [], "resumed_from": [],
               "clock": {"train_s": 0.0, "samples": 0, "tokens": 0, "padded_tokens": 0},
               "baseline": data.majority_baseline(splits.train, splits.validation)}
    start = {"epoch": 0, "batch": 0}
    if checkpoint_dir and not resume and checkpoint.latest(checkpoint_dir):
        print(f"[lab] fresh run: removing the earlier checkpoints in {checkpoint_dir}")
        checkpoint.prune(checkpoint_dir, keep=0)     # else an older run's later steps would count as the latest
    last = checkpoint.latest(checkpoint_dir) if (resume and checkpoint_dir) else None
    if last is not None:
        state = checkpoint.load(last, model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                                config=config, restore_rng=True)
        history, start = state["history"], state["position"]
        if history["step"] < total_steps:
            history["resumed_from"].append(history["step"])
            print(f"[lab] resuming from {last} (step {history['step']} of {total_steps})")
        else:
            print(f"[lab] reloaded the finished run {last}")

    def save(tag: str) -> Path:
        folder = Path(checkpoint_dir or tempfile.mkdtemp(prefix="lab-interrupted-"))
        path = checkpoint.save(folder / f"step-{history['step']:06d}", model, config=config,
                               position=dict(position), optimizer=optimizer, scheduler=scheduler,
                               scaler=scaler, history=history)
        checkpoint.prune(folder)
        print(f"[lab] checkpoint ({tag}) written: {path}", flush=True)
        return path

    position = dict(start)
    with progress_bar(total_steps, initial=history["step"], unit="step", enabled=progress) as bar, \
            _ctrl_c_at_step_boundary() as interrupted:
        for epoch in range(start["epoch"], profile.epochs):
            order = data.batch_order(lengths, profile.batch_size, profile.seed, epoch, **batching(profile))
            model.train()
            first = start["batch"] if epoch == start["epoch"] else 0
            for b in range(first, len(order)):
                t0 = time.perf_counter()
                lr = scheduler.get_last_lr()[0]     # the rate this step uses
                batch = data.collate(enc, order[b])
                loss = step(model, batch, device, precision, optimizer, scheduler, scaler, profile.grad_clip, loss_fn,
                             order[b])
                dt = time.perf_counter() - t0        # batching included; loss.item() in step waited for the GPU
                clock = history["clock"]
                clock["train_s"] += dt
                clock["samples"] += len(order[b])
                clock["tokens"] += sum(lengths[i] for i in order[b])     # from the lengths: no tensor op
                clock["padded_tokens"] += batch["input_ids"].numel()
                history["step_s"].append(dt)
                history["step_padded_tokens"].append(batch["input_ids"].numel())
                history["step"] += 1
                history["loss"].append(loss)
                history["lr"].append(lr)
                position.update(epoch=epoch, batch=b + 1)
                # refresh=False: shown at the bar's next redraw (every mininterval), not redrawn on every step
                bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{clock['samples'] / clock['train_s']:.1f}",
                                refresh=False)
                bar.update(1)
                if interrupted():
                    path = save("interrupted")
                    raise KeyboardInterrupt(f"training stopped at step {history['step']}; resume with "
                                            f"train(..., checkpoint_dir={str(path.parent)!r}, resume=True)")
                if checkpoint_every and checkpoint_dir and history["step"] % checkpoint_every == 0 \
                        and b + 1 < len(order):
                    save(f"every {checkpoint_every} steps")
            t0 = time.perf_counter()
            val = evaluate(model, enc_val, device=device)
            history["epochs"].append({"epoch": epoch + 1, "step": history["step"], "val_accuracy": val["accuracy"],
                                      "val_macro_f1": val["macro_f1"], "eval_s": time.perf_counter() - t0,
                                      **history["clock"]})
            position.update(epoch=epoch + 1, batch=0)
            if checkpoint_dir:
                save("epoch end")
    clock = history["clock"]
    history.update(samples_per_s=clock["samples"] / clock["train_s"], tokens_per_s=clock["tokens"] / clock["train_s"],
                   padded_tokens_per_s=clock["padded_tokens"] / clock["train_s"])
    return history


def step(model, batch, device, precision, optimizer, scheduler, scaler, grad_clip, loss_fn=None, idx=None) -> float:
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    with autocast(device, precision):
        loss = loss_fn(model, batch, idx) if loss_fn else model(**batch).loss
    scaler.scale(loss).backward()         # a no-op scale unless fp16
    scaler.unscale_(optimizer)            # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)                # skips the step if fp16 gradients overflowed
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


class _ctrl_c_at_step_boundary:
    """Turn the first Ctrl-C into a request that the loop honours between steps, so the checkpoint it then writes
    holds whole steps: a KeyboardInterrupt raised inside optimizer.step() would leave half-updated weights.
    A second Ctrl-C interrupts at once. Signals can only be caught in the main thread; elsewhere this is a no-op."""

    def __enter__(self):
        self.requested, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return lambda: self.requested

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\n[lab] Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit now)",
              flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


# ---------------------------------------------------------------- the profile's fine-tuned model

def run_dir(profile) -> Path:
    """Where the profile's fine-tuned checkpoints live: <runs>/<profile>-<model>, with <runs> from lab.record.paths (the
    checkout's runs/, ./lab-output/runs when pip-installed, a per-user temp folder for smoke; $LAB_RUNS overrides)."""
    return paths.runs_dir(profile.name) / f"{profile.name}-{profile.model}"


def checkpoint_every(profile) -> int:
    """About four checkpoints per epoch: a crash loses at most a quarter of an epoch."""
    return max(1, math.ceil((profile.train_size or 8000) / profile.batch_size / 4))


def finetuned(profile, *, device=None):
    """(model, tokenizer) fine-tuned with the profile. Trained once, then reloaded from the checkpoint in
    run_dir(profile) (its SHA-256 fingerprint checked); an interrupted run resumes; a changed profile retrains."""
    return trained(lambda: models.load(profile.model, seed=profile.seed), profile, run_dir(profile), device=device)


def trained(build, profile, folder, *, device=None, loss_fn=None):
    """(model, tokenizer) from `build()`, trained with `profile` into `folder` once: a finished run there is reloaded,
    an interrupted one resumed, one made with another config trained afresh. Weeks 2 and 5 reuse this."""
    model, tokenizer = build()
    splits = data.load_splits(profile)
    kwargs = dict(device=device, checkpoint_dir=folder, checkpoint_every=checkpoint_every(profile), loss_fn=loss_fn)
    try:
        train(model, tokenizer, splits, profile, resume=True, **kwargs)
    except checkpoint.Mismatch as e:
        print(f"[lab] {e}\n[lab] the stored run does not match this profile or this code: training afresh")
        model, tokenizer = build()
        train(model, tokenizer, splits, profile, resume=False, **kwargs)
    model.eval()
    return model, tokenizer


def gpu_name(device) -> str | None:
    return torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else None
