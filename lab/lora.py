"""LoRA adapters (peft) on a sequence classifier, and the two checks that make an adapter safe to hand in.

    model, missing = lora.load_base("minilm", seed=0)      # `missing`: what the pretrained checkpoint lacked
    model = lora.wrap(model, lora.settings_for(profile))    # LoRA on the architecture's projections
    train.train(model, tokenizer, splits, lora.train_profile(profile))       # week 1's loop, unchanged
    lora.save(model, folder)                                # adapter + head, safetensors only
    again = lora.load(folder, seed=1)                       # onto a base built with another seed

LoRA freezes each pretrained weight W (out, in) and learns a low-rank update: y = W x + (alpha / r) B A x, with
A (r, in) random and B (out, r) zero at the start, so training starts from the pretrained model. peft saves A and
B and the modules named in `modules_to_save`, in full; for sequence classification it always adds `classifier`
and `score`, the new head.

The trap: a module that the pretrained checkpoint lacks is initialised at random each time the base is built. If
the adapter does not save it, a reloaded adapter sits on different random weights and predicts differently, with
no error. DeBERTa-v2's `pooler` is the real case: the hub checkpoint has none. `trap_check` names such modules
before you hand in; `reload_check` proves the round trip in a fresh process, on a base built with a *different*
seed (the training run's seed would rebuild the same "random" module and hide the trap).
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lab import checkpoint, data, models, train
from lab.record import paths, scratch

ADAPTER_FILE, CONFIG_FILE, META_FILE = "adapter_model.safetensors", "adapter_config.json", "lab_adapter.json"
PICKLED_FILES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")
HEAD_MODULES = ("classifier", "score")     # a classifier's new head: never in a pretrained checkpoint


@dataclass(frozen=True)
class Settings:
    r: int                  # rank of the update B A: trainable weights per adapted (out, in) layer are r * (out + in)
    alpha: int              # the update is scaled by alpha / r, so changing r keeps the update's size comparable
    dropout: float          # on the input of A while training
    lr: float               # LoRA trains ~1% of the weights, B from zero: it wants a larger rate than a full fine-tune
    modules_to_save: tuple[str, ...] = ()    # trained and saved in full, besides peft's own classifier/score


# One per profile. cpu: r=8 on MiniLM's query/value trains 74k weights besides the head. Its rate, swept on the cpu
# profile (test accuracy after two epochs): 2e-4, week 1's full fine-tune rate, stays at the majority baseline
# (0.578); 1e-3 reaches 0.799; 2e-3 0.807. gpu: not yet measured on a GPU.
SETTINGS = {
    "smoke": Settings(r=4, alpha=8, dropout=0.0, lr=5e-3),
    "cpu": Settings(r=8, alpha=16, dropout=0.1, lr=2e-3),
    "gpu": Settings(r=16, alpha=32, dropout=0.1, lr=2e-4),
}

# The layers LoRA adapts, per transformers model_type: the attention projections, and for ModernBERT also the MLP's.
TARGETS = {
    "bert": ["query", "value"],
    "modernbert": ["Wqkv", "Wo", "Wi"],          # attention qkv and output, MLP in and out (both named Wo)
    "deberta-v2": ["query_proj", "value_proj"],
}


def settings_for(profile) -> Settings:
    """The settings of the profile's recipe: a rehearsal uses those of the profile it rehearses (lab.config)."""
    from lab.config import recipe
    try:
        return SETTINGS[recipe(profile)]
    except KeyError:
        raise ValueError(f"no LoRA settings for profile {profile.name!r}; known: {', '.join(SETTINGS)}") from None


def train_profile(profile, settings: Settings):
    """The profile LoRA trains with: its learning rate, and the settings in `extra`, so that a checkpoint's config
    (lab.train.run_config) carries them and a changed setting retrains instead of resuming."""
    return profile.but(lr=settings.lr, extra={**profile.extra, "lora": asdict(settings)})


def target_modules(model) -> list[str]:
    arch = model.config.model_type
    if arch in TARGETS:
        return TARGETS[arch]
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    raise ValueError(f"no LoRA target modules known for architecture {arch!r}; its linear layers are named "
                     f"{', '.join(linear)}. Pass target_modules=[...] (usually the attention projections), or add "
                     f"{arch!r} to lab.lora.TARGETS.")


# ---------------------------------------------------------------- the base model

def pretrained_folder(key: str, folder, drop: tuple[str, ...] = ()) -> Path:
    """Save a random-init candidate as a pretrained checkpoint would be: its body (seed 0) without the classifier
    head, and without the top-level modules in `drop` (the hub's DeBERTa-v3 has no `pooler`). Loading it then
    initialises at random exactly what a real checkpoint would leave out. Written once; reused after."""
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    model = models.load_model(key, seed=0)
    skip = HEAD_MODULES + tuple(drop)
    body = {k: v for k, v in model.state_dict().items() if k.split(".")[0] not in skip}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / scratch.owned_name(folder.name)
    model.save_pretrained(tmp, state_dict=body)
    scratch.replace_dir(tmp, folder)
    return folder


def base_source(key: str) -> str:
    """Where a base is loaded from: the packaged or hub weights; for a random-init candidate (smoke), a folder
    saved once from its seed-0 weights, so that its body is the same on every load, as real weights are."""
    if models.get(key).source != "config":
        return models.pretrained_source(key)
    return str(pretrained_folder(key, paths.smoke_dir("pretrained") / key))


def load_base(source: str, num_labels: int = 2, seed: int = 0):
    """(model, missing): a classifier from a registry key or a pretrained folder, and the names of the parameters
    the checkpoint lacked, which transformers initialised at random (from `seed`)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging
    key = source if source in models.REGISTRY else None
    path = base_source(key) if key else source
    overrides = models.get(key).config if key and models.get(key).source != "config" else {}   # minilm-l2's layers
    hf_logging.set_verbosity_error()      # the load report lists the new head as missing: expected, and returned
    torch.manual_seed(seed)
    model, info = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels,
                                                                     output_loading_info=True, **overrides)
    # what a checkpoint or adapter names to rebuild it: the key, else the folder's own (lab wrote it), else the folder
    model.config.lab_model_key = key or getattr(model.config, "lab_model_key", None) or source
    return model, sorted(info["missing_keys"])


def wrap(model, settings: Settings, seed: int = 0, targets: list[str] | None = None):
    """The model with LoRA on its target modules (A drawn from `seed`), everything else frozen but the head and
    settings.modules_to_save."""
    from peft import LoraConfig, TaskType, get_peft_model
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=settings.r, lora_alpha=settings.alpha,
                        lora_dropout=settings.dropout, target_modules=targets or target_modules(model),
                        modules_to_save=list(settings.modules_to_save) or None)
    torch.manual_seed(seed)
    return get_peft_model(model, config)


def parameter_counts(model) -> dict:
    trainable, total = model.get_nb_trainable_parameters()     # peft's count; the base's frozen weights included
    return {"trainable": trainable, "total": total, "share": trainable / total}


# ---------------------------------------------------------------- save and load

def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def save(model, folder, source: str | None = None) -> Path:
    """Write the adapter (peft's safetensors and config) plus lab_adapter.json: which base it belongs to (its
    architecture, and `source` to rebuild it) and the adapter file's SHA-256. Atomic: the old folder or the new."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / scratch.owned_name(folder.name)
    model.save_pretrained(tmp, safe_serialization=True)
    meta = {"format": 1, "source": source or model.config.lab_model_key,
            "architecture": checkpoint.architecture(model), "modules_to_save": sorted(model.modules_to_save or []),
            "sha256": _sha256(tmp / ADAPTER_FILE)}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    scratch.replace_dir(tmp, folder)
    return folder


def read_meta(folder) -> dict:
    """lab_adapter.json, checked: the adapter file is there, is safetensors, and has the bytes that were saved."""
    folder = Path(folder)
    file, meta_file = folder / ADAPTER_FILE, folder / META_FILE
    pickled = [folder / name for name in PICKLED_FILES if (folder / name).exists()]
    if not file.is_file():
        if pickled:
            raise checkpoint.CheckpointError(f"{pickled[0]}: a pickled adapter. lab never unpickles (a pickle can "
                                             f"run code); re-save it with peft's "
                                             f"save_pretrained(safe_serialization=True)")
        raise checkpoint.CheckpointError(f"{file}: missing; is {folder} an adapter folder written by lab.lora.save?")
    try:
        meta = json.loads(meta_file.read_text())
        expected = meta["sha256"]
    except FileNotFoundError:
        raise checkpoint.CheckpointError(f"{meta_file}: missing, so nothing says which base {file.name} belongs "
                                         f"to; save adapters with lab.lora.save") from None
    except (ValueError, KeyError, TypeError) as e:
        raise checkpoint.CheckpointError(f"{meta_file}: unreadable ({e})") from None
    found = _sha256(file)
    if found != expected:
        raise checkpoint.CheckpointError(f"{file}: corrupt or changed since it was saved (SHA-256 {found[:16]}…, "
                                         f"saved as {expected[:16]}…)")
    return meta


def load(folder, base=None, seed: int = 0):
    """The saved adapter on `base` (a model), or on a base rebuilt from the adapter's source with `seed`.
    A base of another model or architecture is refused, naming both."""
    from peft import PeftModel
    meta = read_meta(folder)
    if base is None:
        base, _ = load_base(meta["source"], meta["architecture"]["num_labels"], seed)
    found = checkpoint.architecture(base)
    diffs = checkpoint.differences(meta["architecture"], found)
    if diffs:
        raise checkpoint.Mismatch(f"{folder} is an adapter for {meta['architecture']['lab_model_key']!r} "
                                  f"({meta['architecture']['model_type']}), not for {found['lab_model_key']!r} "
                                  f"({found['model_type']}): " + "; ".join(diffs))
    return PeftModel.from_pretrained(base, str(folder)).eval()


# ---------------------------------------------------------------- the checks

def unsaved_random(model, missing: list[str]) -> list[str]:
    """The parameters initialised at random when the base loads (`missing`) that the adapter does not save."""
    from peft import get_peft_model_state_dict
    saved = {k.removeprefix("base_model.model.") for k in get_peft_model_state_dict(model)}   # what save() writes
    return [k for k in missing if k not in saved]


def trap_check(model, missing: list[str]) -> dict:
    """Fails, naming the modules and the fix, if a reload would rebuild part of the model at random."""
    unsaved = unsaved_random(model, missing)
    prefix = model.get_base_model().base_model_prefix
    # peft matches modules_to_save by the end of a module's name: 'pooler' finds 'pooler' and 'bert.pooler'
    modules = sorted({k.removeprefix(prefix + ".").split(".")[0] for k in unsaved})
    fix = f"modules_to_save={sorted(set(model.modules_to_save or []) - set(HEAD_MODULES) | set(modules))}"
    return {"check": "nothing random is left unsaved", "pass": not unsaved, "random_at_load": missing,
            "unsaved": unsaved, "modules": modules,
            "message": ("every parameter the pretrained checkpoint lacks is saved with the adapter" if not unsaved
                        else f"{', '.join(modules)}: initialised at random when the base loads, and not saved with "
                             f"the adapter ({', '.join(unsaved)}). A reload puts the adapter on other random "
                             f"weights. Fix: LoRA with {fix}, so peft trains and saves it in full.")}


def fixed_batch(tokenizer, profile, n: int = 16) -> dict[str, torch.Tensor]:
    """The first n test snippets, padded: the batch the reload and merge checks compare logits on."""
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batch = data.collate(enc, list(range(min(n, len(enc)))))
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


@torch.no_grad()
def logits(model, batch) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    return model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()


def reload_check(model, folder, batch, seed: int) -> dict:
    """Load the saved adapter in a fresh process, on a base built with `seed` (not the training seed), and compare
    its logits on `batch` with this process's, bit for bit."""
    here = logits(model, batch)
    with scratch.directory("lora-reload") as tmp:
        save_file({k: v.contiguous() for k, v in batch.items()}, Path(tmp) / "batch.safetensors")
        out = Path(tmp) / "logits.safetensors"
        child = scratch.python(RELOAD_CHILD, str(folder), str(seed), str(Path(tmp) / "batch.safetensors"),
                               str(next(model.parameters()).device), str(out))
        if child.wait() != 0:
            raise RuntimeError(f"the adapter reload process failed with exit code {child.returncode}")
        there = load_file(out)["logits"]
    return {"check": f"reload in a fresh process, base seed {seed}: logits equal", "pass": torch.equal(here, there),
            "max_abs_diff": float((here - there).abs().max()), "adapter_sha256": read_meta(folder)["sha256"],
            "logits_sha256": checkpoint.fingerprint({"logits": here}),
            "reloaded_sha256": checkpoint.fingerprint({"logits": there})}


RELOAD_CHILD = """
import sys
from safetensors.torch import load_file, save_file
from lab import lora
folder, seed, batch_file, device, out = sys.argv[1:]
model = lora.load(folder, seed=int(seed)).to(device)
save_file({"logits": lora.logits(model, load_file(batch_file)).contiguous()}, out)
"""


def merge_check(model, batch) -> dict:
    """merge_and_unload folds B A into W. The same sum in another order: W' x = (W + s B A) x rounds differently
    from W x + s B (A x), so logits move by float32 rounding, and predictions should not."""
    unmerged = logits(model, batch)
    merged = logits(copy.deepcopy(model).merge_and_unload(), batch)
    return {"check": "merge_and_unload: logits against the unmerged adapter", "equal": torch.equal(unmerged, merged),
            "max_abs_diff": float((unmerged - merged).abs().max()),
            "same_predictions": bool((unmerged.argmax(-1) == merged.argmax(-1)).all())}


# ---------------------------------------------------------------- the profile's LoRA run (weeks 2, 3, 6)

def run_dir(profile) -> Path:
    """<runs>/<profile>-<model>-lora: the LoRA run's checkpoints, and its saved adapter in adapter/."""
    full = train.run_dir(profile)
    return full.with_name(full.name + "-lora")


def build(profile):
    """(LoRA model, tokenizer, missing): the profile's base with the profile's LoRA settings, seeded."""
    base, missing = load_base(profile.model, seed=profile.seed)
    model = wrap(base, settings_for(profile), seed=profile.seed)
    return model, models.load_tokenizer(profile.model), missing


def adapted(profile, *, device=None):
    """(model, tokenizer): the profile's LoRA run, trained once in run_dir(profile) and reloaded after (week 3)."""
    lora_profile = train_profile(profile, settings_for(profile))
    return train.trained(lambda: build(profile)[:2], lora_profile, run_dir(profile), device=device)
