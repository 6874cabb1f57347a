"""Profiles: one plain dataclass each, every knob visible in one place.

smoke  tiny random-init models on a few dozen examples: tests and CI, seconds.
cpu    the packaged all-MiniLM-L6-v2 (real weights) on Rotten Tomatoes: the embedded default, minutes on a laptop.
gpu    ModernBERT-base from the Hugging Face hub on the full data: the real course on a Kaggle T4.

rehearsal        the `gpu` profile rehearsed on a CPU: ModernBERT-base's architecture (random-init from its
                 config, 149M parameters, no hub needed), the `gpu` profile's per-profile settings (LoRA rank and
                 rate, week 5's student, its learning rate, warm-up, epochs, sequence length) and so its code paths
                 and page text, on a small data subset. For the instructor, before a T4 ever runs the course:
                 every page end to end in at most 30 min on 2 cores (the subset is sized from a measured step).
rehearsal-smoke  the same, with the tiny ModernBERT config (`tiny-modernbert`) on smoke-sized data: the same code
                 paths in a minute or two, for CI. A separate profile, not a knob on `rehearsal`, so that a
                 record or a freeze names which of the two made it.

A rehearsal follows `gpu` (`follows="gpu"`): lab's per-profile tables (lab.lora.SETTINGS, lab.distill.STUDENTS) look
up `recipe(profile)`, so a rehearsal runs what the real course runs. Like `smoke`, the rehearsals are never
published (UNPUBLISHABLE): random weights make every accuracy meaningless, `lab check` refuses their pages, claims
about accuracy or speed only warn under them (lab.display.claims), and their records and runs go to per-user temp folders,
never to course/measurements (lab.record.paths).

`LAB_PROFILE=smoke|cpu|gpu|rehearsal|rehearsal-smoke` overrides the choice made from the hardware. A `gpu` profile
whose model cannot be fetched (no hub access) falls back to `cpu` with a message: see `lab.models.resolve_profile`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace

from lab.record.paths import UNPUBLISHABLE


@dataclass(frozen=True)
class Profile:
    name: str
    model: str                    # a key of lab.models.REGISTRY
    # data
    train_size: int | None        # examples drawn from the train split (None = all of it)
    eval_size: int | None         # validation examples evaluated each epoch (None = all)
    test_size: int | None         # test examples for the final numbers (None = all)
    max_length: int               # tokens; Rotten Tomatoes snippets are short (median ~25 MiniLM tokens)
    # training
    epochs: int
    batch_size: int
    lr: float                     # 2e-4 reached 0.79 on MiniLM in one epoch on 2,000 examples; 5e-5 barely beat majority
    warmup_ratio: float           # fraction of steps spent in linear warmup
    weight_decay: float
    grad_clip: float              # max global grad norm
    seed: int = 0
    split_seed: int = 0           # train/validation/test split; fixed so every week sees the same test set
    # benchmarking
    bench_repeats: int = 20       # timed repeats per latency row (after warm-up)
    bench_batch_sizes: tuple[int, ...] = (1, 32)
    follows: str | None = None    # the profile whose settings and page text this one rehearses (see recipe())
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bench_batch_sizes"] = list(self.bench_batch_sizes)
        if d["follows"] is None:      # so that adding the field left the stored records of smoke/cpu/gpu fresh
            del d["follows"]
        return d

    def but(self, **changes) -> "Profile":
        """A copy with some fields changed: `profile.but(epochs=1)`. Unknown fields are an error."""
        valid = sorted(f.name for f in fields(self))
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise TypeError(f"Profile has no field(s) {unknown}; valid fields: {valid}")
        return replace(self, **changes)


SMOKE = Profile(
    name="smoke",
    model="tiny-bert",            # random init, built from a BertConfig: seconds on a CPU
    train_size=64,
    eval_size=32,
    test_size=32,
    max_length=32,
    epochs=1,
    batch_size=16,
    lr=1e-3,
    warmup_ratio=0.1,
    weight_decay=0.01,
    grad_clip=1.0,
    bench_repeats=3,
)

CPU = Profile(
    name="cpu",
    model="minilm",               # packaged all-MiniLM-L6-v2: 22.7M params, real weights, Apache-2.0
    train_size=4000,              # ~2 epochs x 4,000 examples fits in minutes on 2 cores with dynamic padding
    eval_size=None,
    test_size=None,
    max_length=128,
    epochs=2,
    batch_size=32,
    lr=2e-4,
    warmup_ratio=0.06,
    weight_decay=0.01,
    grad_clip=1.0,
)

GPU = Profile(
    name="gpu",
    model="modernbert-base",      # answerdotai/ModernBERT-base from the hub: 149M params, Apache-2.0
    train_size=None,
    eval_size=None,
    test_size=None,
    max_length=128,
    epochs=3,
    batch_size=32,
    lr=5e-5,                      # the ModernBERT paper's GLUE range; MiniLM wants more (see CPU)
    warmup_ratio=0.06,
    weight_decay=0.01,
    grad_clip=1.0,
)

# Sized from measured steps (random-init ModernBERT-base, 2 Xeon cores, batches of 8 snippets of ~27 padded tokens):
# 1.3-2.5 s a training step when the cores are nearly free; 6.9 s median (week 1's 40 steps: 334 s, the page's
# fine-tune record 483 s with evaluation and the full-split projection) at a load average of 4-6 from other jobs.
# Week 1's page end to end took 18.6 min at that load: the fine-tune 483 s and its checks 629 s (four short runs,
# each writing 1.7 GB checkpoints: ModernBERT-base's weights plus AdamW's two moments).
# Training steps across the course: week 1's run (2 x 20) and its checks (4 short runs of 12), week 2's LoRA run
# (40), the scorecard's three short runs (36): ~170 steps, ~5 min on free cores; the rest is inference, ONNX export,
# int8 quantization and torch.compile of a 149M-parameter model (week 4, the largest unmeasured share), and week
# 5's 2-layer students. Batches of 8, not the T4's 32, keep each step short; batch size changes no code path.
REHEARSAL = GPU.but(
    name="rehearsal",
    model="modernbert-base-random",   # ModernBERT-base's config, random weights: 149M params, offline
    train_size=160,
    eval_size=64,
    test_size=128,
    epochs=2,                     # two, not three: still crosses an epoch boundary (schedule, checkpoints, resume)
    batch_size=8,
    bench_repeats=3,
    bench_batch_sizes=(1, 8),
    follows="gpu",
)

REHEARSAL_SMOKE = REHEARSAL.but(
    name="rehearsal-smoke",
    model="tiny-modernbert",      # ModernBERT's architecture at a few hundred thousand params: seconds
    train_size=SMOKE.train_size,
    eval_size=SMOKE.eval_size,
    test_size=SMOKE.test_size,
    max_length=SMOKE.max_length,
    batch_size=SMOKE.batch_size,
    bench_batch_sizes=(1, 16),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, CPU, GPU, REHEARSAL, REHEARSAL_SMOKE)}

# Profiles whose pages must never be published (tiny or random-init models: their numbers mean nothing) are named in
# lab.record.paths.UNPUBLISHABLE, where the decision of where their records go is made; these are they.
if UNPUBLISHABLE != {SMOKE.name, REHEARSAL.name, REHEARSAL_SMOKE.name}:
    raise RuntimeError(f"lab.record.paths.UNPUBLISHABLE {sorted(UNPUBLISHABLE)} must name smoke and the rehearsals")


def recipe(profile) -> str:
    """The name under which lab's per-profile tables list this profile's settings: the profile it rehearses
    (`follows`), else its own name. `recipe(REHEARSAL) == "gpu"`."""
    return profile.follows or profile.name

# The profiles this process has handed out, in order: lab.site asks a page's kernel for them after the last cell
# and writes them into the page's freeze entry, so `python -m lab check` can refuse a page executed on `smoke`.
_used: list[str] = []


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else `$LAB_PROFILE`, else the one the hardware suggests (a CUDA GPU -> gpu)."""
    name = name or os.environ.get("LAB_PROFILE") or _hardware_default()
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)} "
            f"(set LAB_PROFILE to one of them, or unset it to choose from the hardware)"
        ) from None
    note_used(profile.name)
    return profile


def note_used(name: str, instead_of: str | None = None) -> None:
    """Record that this process runs on profile `name` (replacing `instead_of`, after a fall-back)."""
    if instead_of in _used:
        _used.remove(instead_of)
    if name not in _used:
        _used.append(name)


def used_profiles() -> list[str]:
    return list(_used)


def _hardware_default() -> str:
    try:
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
