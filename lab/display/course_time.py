"""How long a page takes: measured on this machine, and for the real course (ModernBERT-base on a Kaggle T4).

    lab.display.course_time.opening_line("course/02-lora.qmd", profile)
    # '**Reading:** about 7 min (1,323 words at 200 a minute, an assumption). **Running** on a laptop-class CPU:
    #  2.3 min for this page's measurements, from their records on this site's AMD EPYC (2 cores). **A fresh
    #  session** (a new Kaggle one, say) first remakes week 1's model: 2.2 min more on that CPU, 4.5 min in all.
    #  **On a Kaggle T4**, for the real course (modernbert-base): at least 26 s of GPU arithmetic, and 38 s for
    #  what a fresh session remakes: a lower bound, an *estimate* from FLOPs at 25% of the T4's 65 TFLOP/s fp16
    #  peak (...), until a T4 record replaces it.'
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
# scorecard record per candidate of the profile (lab.recipes.verify.PAGE) and the int8 pipeline record.
PAGE_RECORDS = {
    "course/01-fine-tuning.qmd": ("week1/finetune", "week1/checks"),
    "course/02-lora.qmd": ("week2/lora", "week2/trap"),
    "course/03-error-analysis.qmd": ("week3/errors",),
    "course/04-quantization.qmd": ("week4/routes", "week4/placement", "latency/variants"),
    "course/05-distillation.qmd": ("week5/distill",),
    "course/06-verification.qmd": ("week6/variants",),
    "course/picking-a-model.qmd": None,     # per profile: lab.recipes.verify.PAGE, lab.recipes.int8_pipeline
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
    if names is None:       # picking a model: the scorecards, and the int8 pipeline on DeBERTa's architecture
        from lab.recipes import int8_pipeline, verify
        names = tuple(verify.record_name(m) for m, _ in verify.PAGE.get(profile.name, [])) + (
            int8_pipeline.record_name(int8_pipeline.model_for(profile)),)
    return names


def measured_here(page: str, profile, device: str = "cpu") -> tuple[float | None, str, list[str]]:
    """(seconds, hardware label, missing record names): the sum of wall_s of the page's records for this machine."""
    seconds, missing = records_seconds(page_records(page, profile), profile, device)
    return seconds, env.device_label(env.provenance(device)), missing


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


# What a fresh session (a new Kaggle one, a new laptop folder) must remake before the page's own measurements: the
# earlier weeks' records whose trained models the page loads. Week 4's latency record times week 2's merged LoRA
# model and week 5's students, so week 4 remakes them too, not only week 1's model.
REMAKE = {
    "course/01-fine-tuning.qmd": (),
    "course/02-lora.qmd": ("week1/finetune",),
    "course/03-error-analysis.qmd": ("week1/finetune", "week2/lora"),
    "course/04-quantization.qmd": ("week1/finetune", "week2/lora", "week5/distill"),
    "course/05-distillation.qmd": ("week1/finetune", "week2/lora", "latency/variants"),
    "course/06-verification.qmd": ("week1/finetune", "week2/lora", "week5/distill", "week4/routes",
                                   "latency/variants"),
    "course/picking-a-model.qmd": (),
    "index.qmd": (),
}
READING_WPM = 200       # words a minute for technical prose with formulas: an assumption, said on the page
WHAT = {"week1/finetune": "week 1's model", "week2/lora": "week 2's LoRA run", "week5/distill": "week 5's students",
        "week4/routes": "week 4's routes", "latency/variants": "the shared latency record"}


def reading_words(page: str, root=None) -> int | None:
    """Words of prose on the page (code cells, front matter and inline expressions left out); None off-checkout."""
    import re
    from lab.record import paths
    root = root or paths.site_root()
    file = (root / page) if root else None
    if file is None or not file.is_file():
        return None
    text = re.sub(r"(?s)^---\n.*?\n---\n", "", file.read_text(encoding="utf-8"))
    text = re.sub(r"(?s)```.*?```", " ", text)                # code cells and listings
    text = re.sub(r"`\{python\}[^`]*`", " x ", text)          # an inline value reads as one word
    return len(re.findall(r"[A-Za-z0-9][\w'’.-]*", text))


def records_seconds(names, profile, device: str = "cpu") -> tuple[float | None, list[str]]:
    """(sum of wall_s of the records `names` on this machine, missing names)."""
    prov = env.provenance(device)
    key = store.hardware_key(device, prov)
    total, missing = 0.0, []
    for name in names:
        try:
            rec = store.read(store.record_path(name, key, profile.name))
        except store.Unreadable:
            rec = None
        if rec is None or rec.get("wall_s") is None:
            missing.append(name)
        else:
            total += rec["wall_s"]
    return (None if missing else total), missing


def owning_pages(names) -> list[str]:
    """The pages that measure the records `names` (for their T4 estimates), in course order."""
    return [page for page, recs in PAGE_RECORDS.items() if recs and any(n in recs for n in names)]


def opening_line(page: str, profile) -> str:
    """A Markdown paragraph for the top of `page`: the student's working time. Reading (words at READING_WPM);
    running on a laptop-class CPU, from the page's records on this machine; what a fresh session remakes first, with
    its cost from those records; and on a Kaggle T4 for the real course, a T4 record or a labelled FLOP estimate."""
    own = page_records(page, profile)
    seconds, hardware, missing = measured_here(page, profile)
    parts = []
    words = reading_words(page)
    if words:
        parts.append(f"**Reading:** about {max(1, round(words / READING_WPM))} min ({words:,} words at "
                     f"{READING_WPM} a minute, an assumption).")
    if own:
        if seconds is None:
            run = (f"**Running** on this machine ({hardware}): not recorded yet ({', '.join(missing)}); measured when "
                   f"the page runs.")
        else:
            cpu = hardware.removeprefix("CPU: ")
            run = (f"**Running** on a laptop-class CPU: {budget.duration(seconds)} for this page's measurements, from "
                   f"their records on this site's {cpu}.")
        parts.append(run)
    remake = REMAKE.get(page, ())
    if remake:
        before, absent = records_seconds(remake, profile)
        names = [WHAT.get(n, n) for n in remake]
        what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        cost = (f"{budget.duration(before)} more on that CPU" if before is not None
                else f"not recorded yet ({', '.join(absent)})")
        total = (f", {budget.duration(before + seconds)} in all" if before is not None and seconds is not None
                 else "")
        parts.append(f"**A fresh session** (a new Kaggle one, say) first remakes {what}: {cost}{total}.")
    if PAGE_WORK.get(page):
        gpu = config.PROFILES["gpu"]
        course = f"**On a Kaggle T4**, for the real course ({gpu.model})"
        real = t4_records(page, profile)
        if real is not None:
            parts.append(f"{course}: {budget.duration(real)}, measured on a T4.")
        else:
            est = t4_estimate(page)["seconds"]
            earlier = sum(t4_estimate(p)["seconds"] for p in owning_pages(remake) if PAGE_WORK.get(p))
            also = f", and {budget.duration(earlier)} for what a fresh session remakes" if earlier else ""
            parts.append(f"{course}: at least {budget.duration(est)} of GPU arithmetic{also}: a lower bound, an "
                         f"*estimate* from {t4_estimate(page)['basis']} (loading, start-up and CPU-side work come "
                         f"on top), until a T4 record replaces it.")
    return (marker(profile) + " ".join(parts)).strip()


def marker(profile) -> str:
    """The visible note on a page executed on a profile whose numbers mean nothing (lab.config.UNPUBLISHABLE)."""
    if profile.name not in getattr(config, "UNPUBLISHABLE", {"smoke"}):
        return ""
    return (f"**Not for publication:** executed on the `{profile.name}` profile (random-init or tiny models, "
            f"short runs); its accuracies mean nothing. ")
