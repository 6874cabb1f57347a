"""What each candidate change to lab.train's step costs and saves, each measured on its own.

Every candidate is timed on the real model (its real gradients) and the real random batches of the benchmark,
its variants interleaved call by call, so a burst of load from another process hits all variants alike; each
number is the median over the repeats, in milliseconds per training step.

    rows = candidates(profile, splits)     # [{"change", "variant", "ms_per_step", "in lab.train"}, ...]
    compile_cost(profile, splits, steps)   # torch.compile against eager on the same steps (minutes: opt-in)
"""
from __future__ import annotations

import io
import itertools
import statistics
import time

import torch

from lab import data, models, train


def collate_per_row(enc: data.Encoded, idx: list[int]) -> dict[str, torch.Tensor]:
    """lab.data.collate as it was before this benchmark's changes (a tensor made per row): the baseline the
    current one is measured against."""
    seqs = [enc.input_ids[i] for i in idx]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), enc.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "labels": torch.tensor([enc.labels[i] for i in idx], dtype=torch.long)}


def _adamw(model, profile, **kwargs):
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": profile.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=profile.lr, **kwargs)


def _timed_medians(variants: dict, repeats: int, calls: int = 1) -> dict[str, float]:
    """Median ms per call of each variant, the variants interleaved repeat by repeat; the first repeat warms up."""
    times = {name: [] for name in variants}
    for r in range(repeats + 1):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            if r:
                times[name].append(1000 * (time.perf_counter() - t0) / calls)
    return {name: statistics.median(v) for name, v in times.items()}


def candidates(profile, splits, repeats: int = 15) -> list[dict]:
    model, tokenizer = models.load(profile.model, seed=profile.seed)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    order = data.batch_order(enc.lengths(), profile.batch_size, profile.seed, 0, group_by_length=False)
    model.train()
    model(**data.collate(enc, order[0])).loss.backward()      # real gradients for the optimizer and clipping
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []

    def add(change, measured, now, note=""):
        """`now`: the variant lab.train runs; a variant named '... (lab.train before)' is what it ran before."""
        for variant, ms in measured.items():
            rows.append({"change": change, "variant": variant, "ms_per_step": ms, "in lab.train": variant == now,
                         "before": variant.endswith("lab.train before)"), "note": note})

    opts = {"for-loop (torch's CPU default; lab.train before)": _adamw(model, profile, foreach=False),
            "foreach": _adamw(model, profile, foreach=True),
            "fused (the HF Trainer's default)": _adamw(model, profile, fused=True)}
    add("AdamW implementation", _timed_medians({k: o.step for k, o in opts.items()}, repeats),
        "fused (the HF Trainer's default)")
    add("gradient clipping", _timed_medians({
        "per tensor (torch's CPU default; both loops)": lambda: torch.nn.utils.clip_grad_norm_(params, 1e9),
        "foreach": lambda: torch.nn.utils.clip_grad_norm_(params, 1e9, foreach=True)}, repeats),
        "per tensor (torch's CPU default; both loops)", "max_norm 1e9: the norm and the scaling, grads unchanged")
    clip_first, folded = _adamw(model, profile, fused=True), _adamw(model, profile, fused=True)

    def clip_then_step():
        torch.nn.utils.clip_grad_norm_(params, profile.grad_clip)
        clip_first.step()

    def fold_into_step():      # the fused kernel divides each gradient by grad_scale as it reads it
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        folded.grad_scale = torch.clamp((norm + 1e-6) / profile.grad_clip, min=1.0)
        folded.step()
        del folded.grad_scale
    add("clipping and the optimizer step", _timed_medians({
        "clip_grad_norm_, then the fused step (both loops)": clip_then_step,
        "the norm only, its scaling folded into the fused step": fold_into_step}, repeats),
        "clip_grad_norm_, then the fused step (both loops)",
        "not taken: it leans on the grad_scale attribute that GradScaler and fused optimizers share, which the "
        "fp16 path sets too")
    per_row, numpy_ = itertools.cycle(order), itertools.cycle(order)     # the same batches for both
    add("batch building", _timed_medians({
        "a tensor per row (lab.train before)": lambda: collate_per_row(enc, next(per_row)),
        "numpy, then torch.from_numpy": lambda: data.collate(enc, next(numpy_))}, repeats, calls=len(order)),
        "numpy, then torch.from_numpy")
    add("progress bar", _timed_medians(_bars(), repeats, calls=200), "postfix refresh=False, drawn every 2 s",
        "tqdm writing to memory: a terminal or a notebook widget costs more per redraw")
    loss = model(**data.collate(enc, order[1])).loss.detach()
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    add("host sync", _timed_medians({"loss.item() every step": loss.item}, repeats, calls=200),
        "loss.item() every step", "kept: on a GPU it is what makes each step's clock (history['step_s']) true")
    add("GradScaler calls with fp16 off", _timed_medians({
        "scale, unscale_, step, update": lambda: (scaler.scale(loss), scaler.unscale_(sgd), scaler.step(sgd),
                                                  scaler.update()),
        "optimizer.step alone": sgd.step}, repeats, calls=200), "scale, unscale_, step, update",
        "kept: the fp16 path on older GPUs needs them; with fp16 off each returns at once")
    return rows


def _bars():
    from tqdm.std import tqdm
    made = {}
    for name, refresh in (("postfix redrawn every step (lab.train before)", True),
                          ("postfix refresh=False, drawn every 2 s", False)):
        bar = tqdm(total=10**9, file=io.StringIO(), mininterval=2.0)

        def step(bar=bar, refresh=refresh):
            bar.set_postfix(loss="0.412", samples_s="45.1", refresh=refresh)
            bar.update(1)
        made[name] = step
    return made


def compile_cost(profile, splits, steps: int = 12) -> dict:
    """The same `steps` training steps eager and under torch.compile (dynamic shapes: every batch has its own
    width): what compiling costs up front, and what it saves per step once compiled."""
    out = {}
    for mode in ("eager", "torch.compile(dynamic=True)"):
        model, tokenizer = models.load(profile.model, seed=profile.seed)
        enc = data.encode(tokenizer, splits.train, profile.max_length)
        order = data.batch_order(enc.lengths(), profile.batch_size, profile.seed, 0, group_by_length=False)
        model.train()
        run = torch.compile(model, dynamic=True) if mode != "eager" else model
        optimizer = train.make_optimizer(model, profile)
        times = []
        for idx in order[:steps]:
            t0 = time.perf_counter()
            run(**data.collate(enc, idx)).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
        out[mode] = {"total_s": sum(times), "first_two_s": sum(times[:2]),
                     "median_later_step_ms": 1000 * statistics.median(times[2:])}
    return {"steps": steps, **out}
