"""The loops the throughput benchmark compares, each trained from the same fresh model on the same data, and
the phase profile of two of them. Each row returns the trained model and what it measured; `train_s` runs on one
clock for every row (step_phases.training_clock): from the first training forward to the end of the training
call, less lab.train's evaluation.
"""
from __future__ import annotations

import contextlib
import io
import math
import statistics
import tempfile
import time

import torch

from lab import data, models, train
from step_phases import Phases, training_clock

LAB, NO_GROUPING, TRAINER, PADDED = ("lab.train", "lab.train, no length grouping",
                                     "HF Trainer + DataCollatorWithPadding, same batches",
                                     "naive loop, padded to max_length")
# the two loops the phase, operator and lockstep profiles compare, on the same random batches
PAIR = (NO_GROUPING, "HF Trainer, same batches")


def fresh(profile):
    return models.load(profile.model, seed=profile.seed)


def ungrouped(profile):
    """The profile with length grouping off: random batches, the ones the Trainer is fed."""
    return profile.but(extra={**profile.extra, "group_by_length": False})


def row_lab(profile, splits, group_by_length: bool, progress: bool = False) -> dict:
    model, tokenizer = fresh(profile)
    p = profile.but(extra={**profile.extra, "group_by_length": group_by_length})
    evaluate, in_eval = train.evaluate, {"s": 0.0, "cpu_s": 0.0}

    def timed_evaluate(*args, **kwargs):      # lab.train validates after each epoch: not training time
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return evaluate(*args, **kwargs)
        finally:
            in_eval["s"] += time.perf_counter() - t0
            in_eval["cpu_s"] += time.process_time() - c0
    train.evaluate = timed_evaluate
    try:
        with training_clock(model) as clock:
            history = train.train(model, tokenizer, splits, p, progress=progress)
            end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        train.evaluate = evaluate
    return {"model": model, "tokenizer": tokenizer, "optimizer": _describe(train.make_optimizer(model, p)),
            "train_s": end - clock["start"] - in_eval["s"], "cpu_s": cpu_end - clock["cpu_start"] - in_eval["cpu_s"],
            "own_clock_s": history["clock"]["train_s"], "padded_tokens": history["clock"]["padded_tokens"]}


class _LabOrder(torch.utils.data.Sampler):
    """lab.data.batch_order's random batches, flattened: the Trainer's DataLoader cuts them back into the same
    batches. A new epoch's order on each pass, as lab.train draws it."""

    def __init__(self, lengths, profile):
        self.lengths, self.profile, self.epoch = lengths, profile, 0

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        batches = data.batch_order(self.lengths, self.profile.batch_size, self.profile.seed, self.epoch,
                                   group_by_length=False)
        self.epoch += 1
        return iter([i for b in batches for i in b])


def _trainer(profile, splits, progress: bool = False):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    class SameBatchesTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return _LabOrder(enc.lengths(), profile)

    model, tokenizer = fresh(profile)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    rows = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": y}
            for ids, y in zip(enc.input_ids, enc.labels)]
    steps = math.ceil(len(rows) / profile.batch_size) * profile.epochs
    precision = train.precision_for(train.default_device())
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-trainer-"), per_device_train_batch_size=profile.batch_size,
        num_train_epochs=profile.epochs, learning_rate=profile.lr, weight_decay=profile.weight_decay,
        warmup_steps=math.ceil(profile.warmup_ratio * steps), lr_scheduler_type="linear",
        max_grad_norm=profile.grad_clip, seed=profile.seed, data_seed=profile.seed,
        use_cpu=not torch.cuda.is_available(), fp16=precision == "fp16", bf16=precision == "bf16",
        report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=not progress,
        dataloader_num_workers=0)
    padded = [0]

    def collator(features, pad=DataCollatorWithPadding(tokenizer)):
        batch = pad(features)
        padded[0] += batch["input_ids"].numel()
        return batch
    return SameBatchesTrainer(model=model, args=args, train_dataset=rows, data_collator=collator), tokenizer, padded


def row_trainer(profile, splits) -> dict:
    trainer, tokenizer, padded = _trainer(profile, splits)
    with training_clock(trainer.model) as clock:
        out = trainer.train()
        end, cpu_end = time.perf_counter(), time.process_time()
    return {"model": trainer.model, "tokenizer": tokenizer, "optimizer": _describe(trainer.optimizer),
            "train_s": end - clock["start"], "cpu_s": cpu_end - clock["cpu_start"],
            "own_clock_s": float(out.metrics["train_runtime"]),
            "padded_tokens": padded[0]}


def row_padded(profile, splits) -> dict:
    """The naive loop: every batch padded to max_length, random order, otherwise the same recipe."""
    model, tokenizer = fresh(profile)
    device = torch.device(train.default_device())
    model.to(device).train()
    train.seed_everything(profile.seed)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    steps = math.ceil(len(enc) / profile.batch_size) * profile.epochs
    optimizer = train.make_optimizer(model, profile)
    scheduler = train.linear_schedule(optimizer, math.ceil(profile.warmup_ratio * steps), steps)
    padded = 0
    with training_clock(model) as clock:
        for epoch in range(profile.epochs):
            for idx in data.batch_order(enc.lengths(), profile.batch_size, profile.seed, epoch,
                                        group_by_length=False):
                batch = {k: v.to(device) for k, v in data.collate(enc, idx, pad_to=profile.max_length).items()}
                model(**batch).loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                padded += batch["input_ids"].numel()
        if device.type == "cuda":
            torch.cuda.synchronize()
        end, cpu_end = time.perf_counter(), time.process_time()
    return {"model": model, "tokenizer": tokenizer, "optimizer": _describe(optimizer),
            "train_s": end - clock["start"], "cpu_s": cpu_end - clock["cpu_start"], "own_clock_s": None,
            "padded_tokens": padded}


def _describe(optimizer) -> str:
    optimizer = getattr(optimizer, "optimizer", optimizer)     # the torch optimizer inside accelerate's wrapper
    d = optimizer.defaults
    return f"{type(optimizer).__name__}(fused={d.get('fused')}, foreach={d.get('foreach')})"


ROWS = {
    LAB: lambda p, s: row_lab(p, s, group_by_length=True),
    NO_GROUPING: lambda p, s: row_lab(p, s, group_by_length=False),
    TRAINER: row_trainer,
    PADDED: row_padded,
}


def phase_profile(profile, splits, rounds: int = 3) -> dict:
    """One epoch of lab.train (no grouping) and of the Trainer on the same batches, each with its progress bar
    on (written to memory), timed phase by phase; `rounds` of each, alternating which goes first, and the median
    of each phase over the rounds (another process's burst of load lands in one round, not in one loop)."""
    runs = {name: [] for name in PAIR}
    loops = [(name, fn) for name, fn in zip(runs, (_profile_lab, _profile_trainer))]
    for r in range(rounds):
        for name, fn in (loops if r % 2 == 0 else loops[::-1]):
            runs[name].append(fn(profile, splits))
    return {name: {"steps": rs[0]["steps"], "rounds": len(rs), "step_ms": statistics.median(x["step_ms"] for x in rs),
                   "ms_per_step": {phase: statistics.median(x["ms_per_step"][phase] for x in rs)
                                   for phase in rs[0]["ms_per_step"]},
                   "step_ms_by_round": [x["step_ms"] for x in rs]}
            for name, rs in runs.items()}


def _profile_lab(profile, splits) -> dict:
    model, tokenizer = fresh(profile)
    p = ungrouped(profile)
    with Phases(model, extra=[(data, "collate", "batch building")]) as phases, \
            contextlib.redirect_stderr(io.StringIO()):
        train.train(model, tokenizer, splits, p, progress=True)
    return phases.summary()


def _profile_trainer(profile, splits) -> dict:
    from transformers import DataCollatorWithPadding
    trainer, _, _ = _trainer(profile, splits, progress=True)
    with Phases(trainer.model, extra=[(DataCollatorWithPadding, "__call__", "batch building")]) as phases, \
            contextlib.redirect_stderr(io.StringIO()):
        trainer.train()
    return phases.summary()


def lockstep_profile(profile, splits, rounds: int = 2) -> dict:
    """lab.train (no grouping) and the Trainer on the same batches, step by step in lockstep (step_lockstep), one
    epoch per round, the leader of each pair alternating by round: the loops' speed ratio, free of the drift
    between rows run a minute apart."""
    from step_lockstep import compare, lockstep
    p, names = ungrouped(profile), PAIR
    runs = []
    for r in range(rounds):
        model, tokenizer = fresh(profile)                 # built here, in the main thread (see step_lockstep)
        trainer, _, _ = _trainer(profile, splits)
        loops = {names[0]: lambda: train.train(model, tokenizer, splits, p, progress=False),
                 names[1]: trainer.train}
        runs.append(lockstep(loops, first=names[r % 2]))
    result = compare(runs, *names)
    for r, run in enumerate(result["runs"]):
        run["first"] = names[r % 2]
    return result


def operator_profile(profile, splits, active: int = 16) -> dict:
    """The operators of lab.train (no grouping) and of the Trainer on the same batches, per step (step_operators):
    `active` steps each, after 4 unrecorded ones."""
    from step_operators import OperatorSteps, compare
    splits = data.Splits(splits.train.head((active + 6) * profile.batch_size), splits.validation, splits.test)
    if math.ceil(len(splits.train) / profile.batch_size) < active + 6:      # the smoke profile's 64 examples:
        profile = profile.but(batch_size=max(1, len(splits.train) // (active + 6)))   # smaller batches, one epoch
    p = ungrouped(profile)
    model, tokenizer = fresh(profile)
    with OperatorSteps(active) as lab_ops:
        train.train(model, tokenizer, splits, p, progress=False)
    trainer, _, _ = _trainer(profile, splits)
    with OperatorSteps(active) as hf_ops:
        trainer.train()
    return {"steps": active, "loops": list(PAIR),
            **compare(lab_ops.per_step(), hf_ops.per_step())}
