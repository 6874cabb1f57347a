"""Week 2's records: a LoRA run with its checks, and the trap (an adapter that reloads to different logits) for real.

    measured("week2/lora", week2.lora_record, profile=profile)   # wrap, train, evaluate, save the adapter, reload, merge
    measured("week2/trap", week2.trap_record, profile=profile)   # tiny DeBERTa-v2 without its pooler, then with the fix

The mechanism (wrap, save, load, the checks, the profile's run that week 3 reuses: lab.lora.adapted) is lab.lora.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path

from lab import config, data, lora, models, sizes, train
from lab.record import scratch

TRAP_MODEL = "tiny-deberta"     # DeBERTa-v2's shapes at toy size: the trap is in the architecture, not the size


def lora_record(profile) -> dict:
    """A fresh LoRA run (kept for week 3), its test metrics, size, and the three checks."""
    device = train.default_device()
    settings = lora.settings_for(profile)
    model, tokenizer, missing = lora.build(profile)
    splits = data.load_splits(profile)
    history = train.train(model, tokenizer, splits, lora.train_profile(profile, settings), device=device,
                          checkpoint_dir=lora.run_dir(profile), checkpoint_every=train.checkpoint_every(profile))
    test = train.evaluate(model, data.encode(tokenizer, splits.test, profile.max_length), device=device)
    folder = lora.save(model, lora.run_dir(profile) / "adapter", source=profile.model)
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
