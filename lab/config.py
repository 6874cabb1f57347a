"""Profiles: one plain dataclass each, every knob visible in one place.

smoke  tiny random-init models on a few dozen examples: tests and CI, seconds.
cpu    the packaged all-MiniLM-L6-v2 (real weights) on Rotten Tomatoes: the embedded default, minutes on a laptop.
gpu    ModernBERT-base from the Hugging Face hub on the full data: the real course on a Kaggle T4.

`LAB_PROFILE=smoke|cpu|gpu` overrides the choice made from the hardware. A `gpu` profile whose model cannot be
fetched (no hub access) falls back to `cpu` with a message: see `lab.models.resolve_profile`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace


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
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bench_batch_sizes"] = list(self.bench_batch_sizes)
        return d

    def but(self, **changes) -> "Profile":
        """A copy with some fields changed: `profile.but(epochs=1)`. Unknown fields are an error."""
        unknown = sorted(set(changes) - set(self.to_dict()))
        if unknown:
            raise TypeError(f"Profile has no field(s) {unknown}; valid fields: {sorted(self.to_dict())}")
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

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, CPU, GPU)}

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
