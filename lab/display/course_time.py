"""How long a page takes: measured on this machine, and for the real course (ModernBERT-base on a Kaggle T4).

    lab.display.course_time.opening_line("course/01-fine-tuning.qmd", profile)
    # 'On this machine (CPU: Intel(R) Xeon(R) Processor (2 cores)) this page's measurements took 4.2 min. For the
    #  real course (modernbert-base on a Kaggle T4), about 41 s of GPU arithmetic: an *estimate* from FLOPs at 25%
    #  of the T4's 65 TFLOP/s fp16 peak (loading, start-up and CPU-side work come on top), until a T4 record
    #  replaces it.'
    # On an unpublishable profile (smoke, the rehearsals) it opens with a bold "Not for publication" marker.

Here: the `wall_s` of the records the page measures (PAGE_RECORDS), read from this profile's records folder for
this machine's CPU. A record that is not there yet is said to be missing, never guessed.

The T4: from a `cuda-*t4*` record of each of those measurements when one exists; until then an estimate from FLOPs
for the `gpu` profile's workload (PAGE_WORK): training costs 6 x N x tokens, inference 2 x N x tokens (N: the
parameters outside the embedding tables, lab.budget), at an assumed share of the T4's 65 TFLOP/s fp16 dense peak
(lab.budget.T4_SHARE_OF_PEAK, which says why). GPU arithmetic of the main passes only: loading, export, checkpoint
writes and the CPU-only int8 routes are left out, so the estimate is a floor, and labelled an estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lab import budget, config, data, models
from lab.record import env, store

# The records each page measures (its own, not the earlier weeks' it reads). "picking a model" measures one
# scorecard record per candidate of the profile: lab.recipes.verify.PAGE.
PAGE_RECORDS = {
    "course/01-fine-tuning.qmd": ("week1/finetune", "week1/checks"),
    "course/02-lora.qmd": ("week2/lora", "week2/trap"),
    "course/03-error-analysis.qmd": ("week3/errors",),
    "course/04-quantization.qmd": ("week4/routes", "week4/placement", "latency/variants"),
    "course/05-distillation.qmd": ("week5/distill",),
    "course/06-verification.qmd": ("week6/variants",),
    "course/picking-a-model.qmd": None,     # from lab.recipes.verify.PAGE, per profile
    "index.qmd": (),
}


@dataclass(frozen=True)
class Pass:
    """One pass of a page's GPU arithmetic: `epochs` passes of `model` over a split, at `flops` per parameter and
    token (6 train, 4 LoRA train: the frozen weights get no weight gradients, 2 inference). Split FULL_FINETUNE is
    lab.budget's full fine-tune, with its evaluation: the workload week 1 and the scorecard project."""
    what: str
    model: str          # "course": the profile's model; "student": week 5's student; else a registry key
    split: str          # train, validation or test
    epochs: float       # passes over the split; negative: that many times the profile's epochs
    flops: int


TRAIN, LORA_TRAIN, INFER = 6, 4, 2
FULL_FINETUNE = "full fine-tune"
PAGE_WORK = {
    "course/01-fine-tuning.qmd": [Pass("full fine-tune", "course", FULL_FINETUNE, 1, TRAIN),
                                  Pass("test", "course", "test", 1, INFER)],
    "course/02-lora.qmd": [Pass("LoRA fine-tune", "course", "train", -1, LORA_TRAIN),
                           Pass("validation", "course", "validation", -1, INFER),
                           Pass("test", "course", "test", 1, INFER)],
    "course/03-error-analysis.qmd": [Pass("test, two models", "course", "test", 2, INFER)],
    "course/04-quantization.qmd": [Pass("test, GPU routes (fp32, fp16)", "course", "test", 2, INFER)],
    "course/05-distillation.qmd": [Pass("teacher logits", "course", "train", 1, INFER),
                                   Pass("three students", "student", "train", -3, TRAIN),
                                   Pass("students' validation", "student", "validation", -3, INFER)],
    "course/06-verification.qmd": [Pass("test, merged LoRA and student", "course", "test", 2, INFER)],
    "course/picking-a-model.qmd": [],       # the scorecard: twelve-step runs, seconds of GPU arithmetic
    "index.qmd": [],
}


def page_records(page: str, profile) -> tuple[str, ...]:
    if page not in PAGE_RECORDS:
        raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGE_RECORDS)}")
    names = PAGE_RECORDS[page]
    if names is None:
        from lab.recipes import verify
        names = tuple(verify.record_name(m) for m, _ in verify.PAGE.get(profile.name, []))
    return names


def measured_here(page: str, profile, device: str = "cpu") -> tuple[float | None, str, list[str]]:
    """(seconds, hardware label, missing record names): the sum of wall_s of the page's records for this machine."""
    prov = env.provenance(device)
    key = store.hardware_key(device, prov)
    total, missing = 0.0, []
    for name in page_records(page, profile):
        try:
            rec = store.read(store.record_path(name, key, profile.name))
        except store.Unreadable:
            rec = None
        if rec is None or rec.get("wall_s") is None:
            missing.append(name)
        else:
            total += rec["wall_s"]
    return (None if missing else total), env.device_label(prov), missing


def t4_records(page: str, profile) -> float | None:
    """Seconds from `cuda-*t4*` records of every one of the page's measurements, else None."""
    total = 0.0
    names = page_records(page, config.PROFILES["gpu"])
    for name in names:
        recs = [r for r in store.load_all(name, profile.name) if _on_a_t4(r)]
        if not recs or recs[0].get("wall_s") is None:
            return None
        total += recs[0]["wall_s"]
    return total if names else None


def _on_a_t4(record: dict) -> bool:
    """Measured on a T4, for real: a synthetic record (a test's transformed smoke record) never counts."""
    prov = record["provenance"]
    return (not record.get("synthetic") and prov.get("device") == "cuda"
            and "t4" in str((prov.get("gpu") or {}).get("name", "")).lower())


@lru_cache(maxsize=None)
def _tokenizer():
    """The packaged BERT WordPiece tokenizer: ModernBERT's own BPE needs the hub, and on English film snippets the
    two count about the same tokens (an assumption of the estimate)."""
    return models.load_tokenizer("tiny-bert")


@lru_cache(maxsize=None)
def _tokens(split: str, profile_name: str) -> int:
    """Padded tokens of one pass over the whole split, at the profile's max_length and batch size, length-grouped as
    lab.train batches."""
    from lab import train
    profile = config.PROFILES[profile_name].but(epochs=1)
    full = data.split(data.load_rotten_tomatoes(), seed=profile.split_seed)
    lengths = data.encode(_tokenizer(), getattr(full, split), profile.max_length).lengths()
    return budget.padded_tokens(lengths, profile, train.batching(profile))[1]


def _model_key(which: str, profile) -> str:
    if which == "course":
        return profile.model
    if which == "student":
        from lab import distill
        return distill.student_key(profile)
    return which


def t4_estimate(page: str, profile_name: str = "gpu") -> dict:
    """The FLOP estimate of the page on a T4 for the `gpu` profile: seconds, and the basis in words."""
    from lab import train
    profile = config.PROFILES[profile_name]
    seconds = 0.0
    for p in PAGE_WORK[page]:
        n = models.param_count_non_embedding(_model_key(p.model, profile))
        if p.split == FULL_FINETUNE:      # the one definition week 1 and the scorecard project (lab.budget)
            counts = budget.full_finetune(profile, _tokenizer()).counts(train.batching(profile))
            seconds += p.epochs * budget.t4_seconds(counts, n)
            continue
        epochs = profile.epochs * -p.epochs if p.epochs < 0 else p.epochs    # negative: times the profile's epochs
        seconds += p.flops * n * _tokens(p.split, profile.name) * epochs / budget.t4_rate()
    return {"seconds": seconds, "flops": seconds * budget.t4_rate(), "tflops_assumed": budget.t4_rate() / 1e12,
            "basis": (f"FLOPs at {budget.T4_SHARE_OF_PEAK:.0%} of the T4's {budget.peak_tflops('T4'):g} TFLOP/s "
                      f"fp16 peak")}


def opening_line(page: str, profile) -> str:
    """A Markdown sentence for the top of `page`: its time here (from its records) and on a T4 for the real course."""
    seconds, hardware, missing = measured_here(page, profile)
    if not page_records(page, profile):
        here = ""
    elif seconds is None:
        here = (f"On this machine ({hardware}) this page's measurements are not recorded yet "
                f"({', '.join(missing)}); they are taken when the page runs. ")
    else:
        here = f"On this machine ({hardware}) this page's measurements took {budget.duration(seconds)}. "
    gpu = config.PROFILES["gpu"]
    if not PAGE_WORK[page]:       # the index measures nothing; the scorecard's short runs are seconds on a GPU
        return (marker(profile) + here).strip()
    real = t4_records(page, profile)
    course = f"For the real course ({gpu.model} on a Kaggle T4)"
    if real is not None:
        there = f"{course} they took {budget.duration(real)}, measured on a T4."
    else:
        est = t4_estimate(page)
        there = (f"{course}, about {budget.duration(est['seconds'])} of GPU arithmetic: an *estimate* from "
                 f"{est['basis']} (loading, start-up and CPU-side work come on top), until a T4 record replaces it.")
    return marker(profile) + here + there


def marker(profile) -> str:
    """The visible note on a page executed on a profile whose numbers mean nothing (lab.config.UNPUBLISHABLE)."""
    if profile.name not in getattr(config, "UNPUBLISHABLE", {"smoke"}):
        return ""
    return (f"**Not for publication:** executed on the `{profile.name}` profile (random-init or tiny models, "
            f"short runs); its accuracies mean nothing. ")
