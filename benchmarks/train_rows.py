"""The loops the throughput benchmark compares, each trained from the same fresh model on the same data, and
the phase profile of two of them. Each row returns the trained model and what it measured; `train_s` runs on one
clock for every row (step_phases.training_clock): from the first training forward to the end of the training
call, less lab.train's evaluation.

Every row trains in lab.train's precision (row_precision): the device's own half precision where it has one
(lab.precision.precision_for: bf16 on a CPU with native bf16 and on a GPU of compute capability 8.0+, fp16 on a T4),
else fp32. The Trainer rows get it as TrainingArguments(bf16=True) or (fp16=True), the naive loop as torch.autocast
on the device's type (and a GradScaler for fp16), so no loop is compared against another's arithmetic.

Each row also returns its batches as the loop met them (`batches`: the longest example and the labels of every
training batch, in order, noted where the loop builds the batch), so the order a sampler yields can be described
from what it yielded (order_stats).
"""
from __future__ import annotations

import contextlib
import io
import math
import statistics
import tempfile
import time
import types
from collections import Counter

import torch

from lab import data, models, train
from step_phases import Phases, training_clock

LAB, NO_GROUPING, TRAINER, TRAINER_GROUPED, PADDED = ("lab.train", "lab.train, no length grouping",
                                                      "HF Trainer + DataCollatorWithPadding, same batches",
                                                      "HF Trainer, its own length grouping",
                                                      "naive loop, padded to max_length")
# the two loops the phase, operator and lockstep profiles compare, on the same random batches
PAIR = (NO_GROUPING, "HF Trainer, same batches")


def fresh(profile):
    return models.load(profile.model, seed=profile.seed)


def row_precision(profile) -> str:
    """The precision every row trains in: lab.train's own on this device (train.precision_for, what lab.train uses
    when its `precision` is None), or the one the benchmark was asked for (`--precision`, profile.extra)."""
    return profile.extra.get("precision") or train.precision_for(train.default_device())


def _note(batch) -> tuple[int, list[int]]:
    """(longest example in tokens, labels) of one training batch: from its attention mask, so a batch padded to
    max_length still shows its longest real example."""
    return int(batch["attention_mask"].sum(1).max()), batch["labels"].tolist()


def order_stats(batches: list, steps_per_epoch: int, first: int = 8) -> dict:
    """What the order of the first epoch's batches looks like, from the batches the loop met: the longest example
    of the first `first` batches, where the longest batch came, the correlation of batch position with batch length
    (a sort shows as far from 0) and of each batch's length with the next one's (sorted runs, near 1; a shuffled
    batch order, near 0), the share of batches no longer than the one before (runs sorted longest first, near 1; a
    shuffled order, about half), and the mean share of a batch's most common label."""
    epoch = batches[:steps_per_epoch]
    longest = [n for n, _ in epoch]

    def r(x, y):
        try:
            return statistics.correlation(x, y)
        except statistics.StatisticsError:      # fewer than two batches, or every batch equally long
            return None
    return {"batches": len(epoch), "first_longest": longest[:first], "longest_at": longest.index(max(longest)),
            "position_length_r": r(list(range(len(longest))), longest),
            "consecutive_length_r": r(longest[:-1], longest[1:]) if len(longest) > 2 else None,
            "descending_share": (statistics.mean(b <= a for a, b in zip(longest, longest[1:]))
                                 if len(longest) > 1 else None),
            "majority_label_share": statistics.mean(Counter(ls).most_common(1)[0][1] / len(ls) for _, ls in epoch)}


def ungrouped(profile):
    """The profile with length grouping off: random batches, the ones the Trainer is fed."""
    return profile.but(extra={**profile.extra, "group_by_length": False})


def row_lab(profile, splits, group_by_length: bool, progress: bool = False) -> dict:
    model, tokenizer = fresh(profile)
    p = profile.but(extra={**profile.extra, "group_by_length": group_by_length})
    evaluate, in_eval = train.evaluate, {"s": 0.0, "cpu_s": 0.0, "on": False}
    collate, batches = data.collate, []

    def timed_evaluate(*args, **kwargs):      # lab.train validates after each epoch: not training time
        t0, c0 = time.perf_counter(), time.process_time()
        in_eval["on"] = True
        try:
            return evaluate(*args, **kwargs)
        finally:
            in_eval["on"] = False
            in_eval["s"] += time.perf_counter() - t0
            in_eval["cpu_s"] += time.process_time() - c0

    def noted_collate(*args, **kwargs):       # the training batches, in lab.train's order (evaluation's left out)
        batch = collate(*args, **kwargs)
        if not in_eval["on"]:
            batches.append(_note(batch))
        return batch
    train.evaluate, data.collate = timed_evaluate, noted_collate
    try:
        with training_clock(model) as clock:
            history = train.train(model, tokenizer, splits, p, progress=progress, precision=row_precision(profile))
            end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        train.evaluate, data.collate = evaluate, collate
    return {"model": model, "tokenizer": tokenizer, "optimizer": _describe(train.make_optimizer(model, p)),
            "precision": history["precision"],
            "train_s": end - clock["start"] - in_eval["s"], "cpu_s": cpu_end - clock["cpu_start"] - in_eval["cpu_s"],
            "own_clock_s": history["clock"]["train_s"], "padded_tokens": history["clock"]["padded_tokens"],
            "steps_per_epoch": history["steps_per_epoch"], "batches": batches}


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


def _trainer(profile, splits, progress: bool = False, own_grouping: bool = False):
    """The HF Trainer with DataCollatorWithPadding, in lab.train's precision. By default fed lab.data.batch_order's
    random batches (_LabOrder); `own_grouping`: the Trainer as a user would configure it instead, its own
    LengthGroupedSampler (group_by_length; transformers 5: train_sampling_strategy="group_by_length") on its own
    seed, the order it yields noted batch by batch in the collator."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    class SameBatchesTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return _LabOrder(enc.lengths(), profile)

    model, tokenizer = fresh(profile)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    rows = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": y}
            for ids, y in zip(enc.input_ids, enc.labels)]
    steps = math.ceil(len(rows) / profile.batch_size) * profile.epochs
    precision = row_precision(profile)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-trainer-"), per_device_train_batch_size=profile.batch_size,
        num_train_epochs=profile.epochs, learning_rate=profile.lr, weight_decay=profile.weight_decay,
        warmup_steps=math.ceil(profile.warmup_ratio * steps), lr_scheduler_type="linear",
        max_grad_norm=profile.grad_clip, seed=profile.seed, data_seed=profile.seed,
        use_cpu=not torch.cuda.is_available(), fp16=precision == "fp16", bf16=precision == "bf16",
        report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=not progress,
        dataloader_num_workers=0, **_grouping_args(TrainingArguments, own_grouping))
    # the padded tokens, and a note per batch in the order the sampler yielded them (the Trainer evaluates nothing
    # here: every batch the collator sees is a training batch)
    seen = types.SimpleNamespace(padded=0, batches=[])

    def collator(features, pad=DataCollatorWithPadding(tokenizer)):
        batch = pad(features)
        seen.padded += batch["input_ids"].numel()
        seen.batches.append(_note(batch))
        return batch
    cls = Trainer if own_grouping else SameBatchesTrainer
    return cls(model=model, args=args, train_dataset=rows, data_collator=collator), tokenizer, seen


def _grouping_args(TrainingArguments, own_grouping: bool) -> dict:
    """The Trainer's own length grouping, under whichever name the installed transformers takes it."""
    if not own_grouping:
        return {}
    import dataclasses
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:            # transformers 5
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}                 # transformers 4


def row_trainer(profile, splits, own_grouping: bool = False) -> dict:
    trainer, tokenizer, seen = _trainer(profile, splits, own_grouping=own_grouping)
    with training_clock(trainer.model) as clock:
        out = trainer.train()
        end, cpu_end = time.perf_counter(), time.process_time()
    args = trainer.args
    return {"model": trainer.model, "tokenizer": tokenizer, "optimizer": _describe(trainer.optimizer),
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "train_s": end - clock["start"], "cpu_s": cpu_end - clock["cpu_start"],
            "own_clock_s": float(out.metrics["train_runtime"]),
            "padded_tokens": seen.padded, "sampler": type(trainer._get_train_sampler()).__name__,
            "steps_per_epoch": math.ceil(len(trainer.train_dataset) / args.per_device_train_batch_size),
            "batches": seen.batches}


def row_padded(profile, splits) -> dict:
    """The naive loop: every batch padded to max_length, random order, otherwise the same recipe, in the same
    precision: the forward under torch.autocast on the device's type, a GradScaler for fp16."""
    model, tokenizer = fresh(profile)
    device = torch.device(train.default_device())
    precision = row_precision(profile)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.to(device).train()
    train.seed_everything(profile.seed)
    enc = data.encode(tokenizer, splits.train, profile.max_length)
    steps = math.ceil(len(enc) / profile.batch_size) * profile.epochs
    optimizer = train.make_optimizer(model, profile)
    scheduler = train.linear_schedule(optimizer, math.ceil(profile.warmup_ratio * steps), steps)
    padded, batches = 0, []
    with training_clock(model) as clock:
        for epoch in range(profile.epochs):
            for idx in data.batch_order(enc.lengths(), profile.batch_size, profile.seed, epoch,
                                        group_by_length=False):
                batch = {k: v.to(device) for k, v in data.collate(enc, idx, pad_to=profile.max_length).items()}
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    loss = model(**batch).loss
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad()
                padded += batch["input_ids"].numel()
                batches.append((int(batch["attention_mask"].sum(1).max()), [enc.labels[i] for i in idx]))
        if device.type == "cuda":
            torch.cuda.synchronize()
        end, cpu_end = time.perf_counter(), time.process_time()
    return {"model": model, "tokenizer": tokenizer, "optimizer": _describe(optimizer), "precision": precision,
            "train_s": end - clock["start"], "cpu_s": cpu_end - clock["cpu_start"], "own_clock_s": None,
            "padded_tokens": padded, "steps_per_epoch": steps // profile.epochs, "batches": batches}


def _describe(optimizer) -> str:
    optimizer = getattr(optimizer, "optimizer", optimizer)     # the torch optimizer inside accelerate's wrapper
    d = optimizer.defaults
    return f"{type(optimizer).__name__}(fused={d.get('fused')}, foreach={d.get('foreach')})"


ROWS = {
    LAB: lambda p, s: row_lab(p, s, group_by_length=True),
    NO_GROUPING: lambda p, s: row_lab(p, s, group_by_length=False),
    TRAINER: row_trainer,
    TRAINER_GROUPED: lambda p, s: row_trainer(p, s, own_grouping=True),
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
        train.train(model, tokenizer, splits, p, progress=True, precision=row_precision(profile))
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
        loops = {names[0]: lambda: train.train(model, tokenizer, splits, p, progress=False,
                                               precision=row_precision(profile)),
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
        train.train(model, tokenizer, splits, p, progress=False, precision=row_precision(profile))
    trainer, _, _ = _trainer(profile, splits)
    with OperatorSteps(active) as hf_ops:
        trainer.train()
    return {"steps": active, "loops": list(PAIR),
            **compare(lab_ops.per_step(), hf_ops.per_step())}
