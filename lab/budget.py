"""Will the full fine-tune fit the budget? A projection from a measured run, and the FLOP rate it achieved.

Time: a transformer step costs roughly in proportion to the tokens it computes on, padding included, so the
measured seconds per padded token times the full workload's padded tokens (counted exactly, from the same length
grouping) projects the training time; evaluation is projected per example the same way. The rate is the median
over steps, not the mean: on a shared machine another process can slow some steps tenfold (two threads that must
meet at every parallel region, one of them descheduled), and the mean would spread that over the projection.
This is an estimate: it ignores warm-up, checkpoint writes, and any change of step cost with sequence length
beyond linear.

FLOPs: training costs about 6 x N x tokens (2 for the forward pass, 4 for the backward), the usual estimate for
transformers (Kaplan et al., 2020), where N counts the parameters outside the embedding tables: an embedding is a
lookup and does no matrix multiply (counting MiniLM's 11.7M embedding parameters would double its FLOPs and claim
more than the CPU's measured matmul peak). It ignores attention's quadratic term, small on short sequences, so it
is an estimate too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab import data

BUDGET_S = 40 * 60   # the course's budget for one fine-tune: a 40-minute Kaggle session on a T4

# Dense fp16/bf16 tensor-core peaks in TFLOP/s from the vendor datasheets (without 2:4 sparsity). More specific
# names come first: "H100 PCIe" must match before "H100".
PEAK_TFLOPS = [
    ("T4", 65.0),
    ("P100", 18.7),          # no tensor cores: plain fp16
    ("V100", 125.0),
    ("A10G", 70.0),
    ("A100", 312.0),
    ("L4", 121.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),         # SXM
    ("H200", 989.0),
]


# The T4's sustained rate on the course's workload is an assumption, not a measurement: a quarter of its 65 TFLOP/s
# fp16 tensor-core peak. Short snippets (~40 padded tokens, batches of 32: matmuls of ~1,300 rows) keep its tensor
# cores far from peak, and fp16 autocast leaves softmax, LayerNorm and the optimizer in fp32; published BERT-base
# fine-tunes on a T4 reach 20-30% of peak. A GPU record of week 1 (its achieved_tflops) should replace this number.
T4_SHARE_OF_PEAK = 0.25


def t4_rate() -> float:
    """The FLOP/s assumed for a T4 running the course (T4_SHARE_OF_PEAK of its peak): an assumption, not measured."""
    return peak_tflops("T4") * T4_SHARE_OF_PEAK * 1e12


def peak_tflops(gpu_name: str | None) -> float | None:
    """The GPU's dense fp16/bf16 peak, or None for the CPU and for GPUs not in the table."""
    if not gpu_name:
        return None
    for name, peak in sorted(PEAK_TFLOPS, key=lambda row: -len(row[0])):   # longest (most specific) name first
        if name.lower() in gpu_name.lower():
            return peak
    return None


def training_flops(n_params_non_embedding: int, tokens: int) -> float:
    return 6.0 * n_params_non_embedding * tokens


@dataclass(frozen=True)
class Workload:
    """THE full fine-tune of a profile's recipe, the one definition week 1's projection, the scorecard's budget
    check and the pages' T4 estimates (lab.display.course_time) share: every snippet of the fixed training split, for the
    profile's epochs, in its batches, truncated at its max_length, with the whole validation split evaluated after
    each epoch. Two numbers built on it differ only when they answer different questions, by the profile: week 1
    asks what *this profile's* recipe would take here (cpu: 2 epochs of MiniLM); the scorecard asks whether *the
    course's* recipe (gpu: 3 epochs of ModernBERT-base) fits 40 minutes on a T4. `question()` says which."""
    profile: object                 # a lab.config.Profile: epochs, batch_size, seed
    lengths: tuple[int, ...]        # tokens per training snippet, the whole split
    eval_examples: int              # validation snippets per epoch

    def counts(self, batching: dict) -> dict:
        """Steps and padded tokens, counted exactly from the length grouping (`batching`: lab.train.batching)."""
        steps, tokens = padded_tokens(list(self.lengths), self.profile, batching)
        return {"profile": self.profile.name, "examples": len(self.lengths), "epochs": self.profile.epochs,
                "steps": steps, "padded_tokens": tokens, "eval_examples_per_epoch": self.eval_examples,
                "question": self.question()}

    def question(self) -> str:
        return (f"the {self.profile.name} profile's recipe on all {len(self.lengths):,} training snippets: "
                f"{self.profile.epochs} epochs of {self.profile.model} in batches of {self.profile.batch_size}")


def full_finetune(profile, tokenizer) -> Workload:
    """The profile's full fine-tune, with its snippets' lengths from `tokenizer` (the model's own)."""
    full = data.split(data.load_rotten_tomatoes(), seed=profile.split_seed)
    return Workload(profile, tuple(data.encode(tokenizer, full.train, profile.max_length).lengths()),
                    len(full.validation))


def duration(s: float) -> str:
    """Seconds for prose: minutes from one minute up."""
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.2g} s"


def t4_seconds(counts: dict, n_params_non_embedding: int) -> float:
    """A T4's time for a workload's counts (Workload.counts): 6 N per training token, 2 N per evaluated token (each
    epoch, at training's padded tokens per snippet), at the assumed t4_rate(). An estimate: GPU arithmetic only."""
    per_example = counts["padded_tokens"] / (counts["epochs"] * counts["examples"])
    eval_tokens = per_example * counts["eval_examples_per_epoch"] * counts["epochs"]
    n = n_params_non_embedding
    return (training_flops(n, counts["padded_tokens"]) + 2.0 * n * eval_tokens) / t4_rate()


def padded_tokens(lengths: list[int], profile, batching: dict) -> tuple[int, int]:
    """(optimizer steps, padded tokens) of the profile's epochs over examples of these lengths, batched as in
    training (`batching`: lab.data.batch_order's group_by_length and pool)."""
    steps = tokens = 0
    for epoch in range(profile.epochs):
        for batch in data.batch_order(lengths, profile.batch_size, profile.seed, epoch, **batching):
            steps += 1
            tokens += len(batch) * max(lengths[i] for i in batch)
    return steps, tokens


def project(history: dict, workload: Workload, gpu_name: str | None = None, budget_s: float = BUDGET_S) -> dict:
    """Project a full fine-tune (full_finetune) from a measured history: its time at the history's measured rate."""
    clock = history["clock"]
    s_per_token = float(np.median([s / n for s, n in zip(history["step_s"], history["step_padded_tokens"])]))
    counts = workload.counts(history["batching"])
    eval_s = sum(e["eval_s"] for e in history["epochs"]) / max(1, len(history["epochs"]))
    eval_per_example = eval_s / max(1, history["val_examples"])
    train_s = s_per_token * counts["padded_tokens"]
    total_s = train_s + eval_per_example * workload.eval_examples * workload.profile.epochs
    achieved = training_flops(history["n_params_non_embedding"], clock["padded_tokens"]) / clock["train_s"] / 1e12
    peak = peak_tflops(gpu_name)
    return {
        "workload": counts,
        "measured_s_per_padded_token": s_per_token,                           # median over steps
        "mean_s_per_padded_token": clock["train_s"] / clock["padded_tokens"],  # for comparison
        "projected_train_s": train_s,
        "projected_total_s": total_s,
        "budget_s": budget_s,
        "fits": total_s <= budget_s,
        "flops_estimate": "6 x non-embedding parameters x padded tokens",
        "achieved_tflops": achieved,
        "gpu": gpu_name,
        "peak_tflops": peak,
        "fraction_of_peak": achieved / peak if peak else None,
    }
