"""The course's LoRA runs: week 2's measurement, the trap shown for real, the adapted model week 3 reuses.

    rec = measured("week2/lora", lora_runs.record, profile=profile)        # train, save, check, merge
    trap = measured("week2/trap", lora_runs.trap_record, profile=profile)  # tiny DeBERTa-v2 without its pooler
    model, tokenizer = lora_runs.adapted(profile)                           # trained once, then reloaded

The mechanism (wrap, save, load, the checks) is lab.lora; this module runs it on the profile's data.
"""
from __future__ import annotations

import copy
import re
from dataclasses import asdict, replace
from pathlib import Path

from lab import config, data, lora, models, scratch, sizes, train

TRAP_MODEL = "tiny-deberta"     # DeBERTa-v2's shapes at toy size: the trap is in the architecture, not the size


def run_dir(profile) -> Path:
    """<runs>/<profile>-<model>-lora: the LoRA run's checkpoints, and its saved adapter in adapter/."""
    full = train.run_dir(profile)
    return full.with_name(full.name + "-lora")


def build(profile):
    """(LoRA model, tokenizer, missing): the profile's base with the profile's LoRA settings, seeded."""
    base, missing = lora.load_base(profile.model, seed=profile.seed)
    model = lora.wrap(base, lora.settings_for(profile), seed=profile.seed)
    return model, models.load_tokenizer(profile.model), missing


def adapted(profile, *, device=None):
    """(model, tokenizer): the profile's LoRA run, trained once in run_dir(profile) and reloaded after (week 3)."""
    lora_profile = lora.train_profile(profile, lora.settings_for(profile))
    return train.trained(lambda: build(profile)[:2], lora_profile, run_dir(profile), device=device)


def record(profile) -> dict:
    """Week 2's measurement: a fresh LoRA run (kept for week 3), its test metrics, size, and the three checks."""
    device = train.default_device()
    settings = lora.settings_for(profile)
    model, tokenizer, missing = build(profile)
    splits = data.load_splits(profile)
    history = train.train(model, tokenizer, splits, lora.train_profile(profile, settings), device=device,
                          checkpoint_dir=run_dir(profile), checkpoint_every=train.checkpoint_every(profile))
    test = train.evaluate(model, data.encode(tokenizer, splits.test, profile.max_length), device=device)
    folder = lora.save(model, run_dir(profile) / "adapter", source=profile.model)
    batch = lora.fixed_batch(tokenizer, profile)
    return {
        "model": profile.model, "settings": asdict(settings), "targets": lora.target_modules(model.get_base_model()),
        "params": lora.parameter_counts(model), "data": splits.sizes(), "history": history, "test": test,
        "size_mb": {"adapter": sizes.file_mb(folder / lora.ADAPTER_FILE),
                    "full": sizes.safetensors_mb(copy.deepcopy(model).merge_and_unload())},   # a full hand-in
        "trap": lora.trap_check(model, missing),
        "reload": lora.reload_check(model, folder, batch, seed=profile.seed + 1),
        "merge": lora.merge_check(model, batch),
    }


def trap_record(profile) -> dict:
    """The trap for real, on tiny DeBERTa-v2 saved without its pooler as the hub checkpoint is: LoRA with peft's
    default modules_to_save, then with `pooler` added. Each is trap-checked and reloaded on another seed."""
    small = config.SMOKE.but(model=TRAP_MODEL, seed=profile.seed)     # seconds: the trap needs no accuracy
    tokenizer = models.load_tokenizer(TRAP_MODEL)
    splits = data.load_splits(small)
    batch = lora.fixed_batch(tokenizer, small)      # the same examples for both reloads
    rows = []
    with scratch.directory("lora-trap") as tmp:
        pretrained = lora.pretrained_folder(TRAP_MODEL, Path(tmp) / "pretrained", drop=("pooler",))
        for extra in ((), ("pooler",)):
            settings = replace(lora.settings_for(small), modules_to_save=extra)
            base, missing = lora.load_base(str(pretrained), seed=small.seed)
            model = lora.wrap(base, settings, seed=small.seed)
            train.train(model, tokenizer, splits, lora.train_profile(small, settings), progress=False)
            folder = lora.save(model, Path(tmp) / f"adapter-{len(rows)}", source=str(pretrained))
            rows.append({"modules_to_save": sorted(model.modules_to_save), "trap": lora.trap_check(model, missing),
                         "reload": lora.reload_check(model, folder, batch, seed=small.seed + 1)})
    return {"model": TRAP_MODEL, "random_at_load": missing, "rows": rows}


# ---------------------------------------------------------------- display

def comparison_rows(full: dict, adapter: dict) -> list[dict]:
    """Week 1's full fine-tune against week 2's LoRA: accuracy, what trains, how long, what you hand in."""
    def row(name, rec, trainable, mb):
        h = rec["history"]
        return {"": name, "test accuracy": f'{rec["test"]["accuracy"]:.3f}',
                "test macro-F1": f'{rec["test"]["macro_f1"]:.3f}', "trainable parameters": f"{trainable:,}",
                "share trained": f"{100 * trainable / h['n_params']:.2f}%",
                "training time (s)": f'{h["clock"]["train_s"]:.0f}', "samples/s": f'{h["samples_per_s"]:.1f}',
                "hand-in (MB)": f"{mb:.2f}"}
    full_rec = full["result"]
    return [row("full fine-tune (week 1)", full_rec, full_rec["history"]["n_params"], adapter["size_mb"]["full"]),
            row(f"LoRA r={adapter['settings']['r']}", adapter, adapter["params"]["trainable"],
                adapter["size_mb"]["adapter"])]


def check_rows(checks: list[dict]) -> list[dict]:
    return [{"check": c["check"], "result": "pass" if c["pass"] else "FAIL",
             "max |difference|": c.get("max_abs_diff", ""),
             "logits SHA-256 (here / reloaded)": (f"{c['logits_sha256'][:12]}… / {c['reloaded_sha256'][:12]}…"
                                                  if "logits_sha256" in c else "")} for c in checks]


def trap_message(check: dict):
    """lab.lora.trap_check's message for a page, its fix (`modules_to_save=['pooler']`) as code. As plain text the
    fix's quotes would reach the site's Markdown as prose, which typesets them as curly quotes: copied into
    Python, `[‘pooler’]` is a syntax error."""
    from IPython.display import Markdown
    return Markdown(re.sub(r"(modules_to_save=\[[^\]]*\])", r"`\1`", check["message"]))


def trap_rows(trap: dict) -> list[dict]:
    # `modules_to_save` is peft's argument: a name, shown as code
    return [{"`modules_to_save`": ", ".join(r["modules_to_save"]),
             "random at load, not saved": ", ".join(r["trap"]["unsaved"]) or "none", "trap check": "pass" if r["trap"]["pass"] else "FAIL",
             "reload on another seed": "bit-identical" if r["reload"]["pass"] else "different logits",
             "max |difference|": r["reload"]["max_abs_diff"]} for r in trap["rows"]]
