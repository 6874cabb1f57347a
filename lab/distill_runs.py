"""The course's distillation runs: week 5's measurement, and the trained students week 6 reuses.

    rec = measured("week5/distill", distill_runs.record, profile=profile)   # teacher, label-only, distilled
    model, tokenizer = distill_runs.student(profile, distill_runs.best(rec["result"]))   # trained once, reloaded

The mechanism (the loss, the cached teacher logits) is lab.distill; this module runs it on the profile's data.
Every student has the same architecture, data, epochs, schedule and seed; only the loss differs. Their latency is
not measured here: lab.latency times the teacher and every student in one interleaved run (`variant` names them).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path


from lab import bench, data, distill, models, sizes, train

LABELS_ONLY = distill.Settings(temperature=1.0, alpha=0.0)      # the baseline: the student on labels alone
# The sweep: two temperatures at an even mix. Each student costs a full training run (about a minute on 2 cores
# for the cpu profile), so the sweep is as small as shows the effect of softening.
SWEEP = (distill.Settings(temperature=2.0, alpha=0.5), distill.Settings(temperature=4.0, alpha=0.5))


def run_dir(profile, settings: distill.Settings) -> Path:
    """<runs>/<profile>-<teacher>-student-T<T>-a<alpha>: one folder per student."""
    full = train.run_dir(profile)
    return full.with_name(f"{full.name}-student-T{settings.temperature:g}-a{settings.alpha:g}")


def student(profile, settings: distill.Settings, *, device=None, logits=None):
    """(model, tokenizer): the student trained with `settings`, once; reloaded from its run folder after."""
    logits = logits if logits is not None else distill.teacher_logits(profile, device=device)
    build = lambda: models.load(distill.student_key(profile), seed=profile.seed)     # noqa: E731
    return train.trained(build, distill.train_profile(profile, settings), run_dir(profile, settings), device=device,
                         loss_fn=distill.loss_fn(logits, settings))


def variant(settings: distill.Settings | None) -> str:
    """The model's name in the latency record: 'full' for the teacher (week 1's model), 'student-T2-a0.5' ..."""
    if settings is None:
        return "full"
    return f"student-T{settings.temperature:g}-a{settings.alpha:g}"


def variant_of(row: dict) -> str:
    """variant() of a row of this week's record."""
    return variant(distill.Settings(**row["settings"]) if "settings" in row else None)


def label(settings: distill.Settings) -> str:
    if settings.alpha == 0:
        return "student, labels only"
    return f"student, distilled (T={settings.temperature:g}, α={settings.alpha:g})"


def describe(name: str, model, test: dict) -> dict:
    """One row: accuracy, parameters and size of a model (its latency: lab.latency)."""
    return {"model": name, "accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
            "n_params": models.n_params(model), "n_params_non_embedding": models.n_params_non_embedding(model),
            "layers": model.config.num_hidden_layers, "size_mb": sizes.safetensors_mb(model)}


def record(profile) -> dict:
    """Week 5: the teacher (week 1's model), the student on labels only, and the distilled students of the sweep."""
    device = train.default_device()
    teacher, tokenizer = train.finetuned(profile, device=device)
    splits = data.load_splits(profile)
    test_enc = data.encode(tokenizer, splits.test, profile.max_length)
    logits = distill.teacher_logits(profile, device=device)
    rows = [describe("teacher (week 1)", teacher, train.evaluate(teacher, test_enc, device=device))]
    for settings in (LABELS_ONLY, *SWEEP):
        model, tok = models.load(distill.student_key(profile), seed=profile.seed)
        history = train.train(model, tok, splits, distill.train_profile(profile, settings), device=device,
                              checkpoint_dir=run_dir(profile, settings),
                              checkpoint_every=train.checkpoint_every(profile),
                              loss_fn=distill.loss_fn(logits, settings))
        test = train.evaluate(model, test_enc, device=device)
        rows.append({**describe(label(settings), model, test), "settings": asdict(settings),
                     "train_s": history["clock"]["train_s"], "samples_per_s": history["samples_per_s"],
                     "loss": history["loss"]})
    return {"student": distill.student_key(profile), "data": splits.sizes(), "rows": rows,
            "baseline": data.majority_baseline(splits.train, splits.test)}


def best(result: dict) -> distill.Settings:
    """The sweep's best distilled student by test accuracy (ties: the first)."""
    distilled = [r for r in result["rows"] if r.get("settings", {}).get("alpha", 0) > 0]
    return distill.Settings(**max(distilled, key=lambda r: r["accuracy"])["settings"])


# ---------------------------------------------------------------- display

def fp32_latency(speed: dict[str, dict[int, dict]], row: dict) -> dict[int, dict]:
    """{batch: latency row} of a row's model in PyTorch fp32, from lab.latency.lookup(the latency record)."""
    return speed[f"{variant_of(row)}/pytorch-fp32"]     # the route lab.quantize calls its reference


def rows_for_page(result: dict, speed: dict[str, dict[int, dict]]) -> list[dict]:
    """The page's table; `speed`: lab.latency.lookup(the latency record), where every latency comes from."""
    out = []
    for r in result["rows"]:
        lat = fp32_latency(speed, r)
        out.append({"model": r["model"], "layers": r["layers"], "test accuracy": f'{r["accuracy"]:.3f}',
                    "parameters (M)": f'{r["n_params"] / 1e6:.1f}',
                    "outside embeddings (M)": f'{r["n_params_non_embedding"] / 1e6:.1f}',
                    "size (MB)": f'{r["size_mb"]:.1f}',
                    **{f"batch {b} ms (p10–p90)": bench.ms(x) for b, x in sorted(lat.items())},
                    "training time (s)": f'{r["train_s"]:.0f}' if "train_s" in r else "week 1"})
    return out


def loss_plot(result: dict, window: int = 10):
    """Each student's training loss per step, as a running mean of `window` steps."""
    import matplotlib.pyplot as plt
    import numpy as np
    from lab import report
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, r in enumerate(row for row in result["rows"] if "loss" in row):
        loss = np.asarray(r["loss"])
        w = max(1, min(window, len(loss)))
        ax.plot(np.arange(w, len(loss) + 1), np.convolve(loss, np.ones(w) / w, mode="valid"), color=f"C{i}",
                label=r["model"])
    report.style(ax, "Student training loss", "optimizer step", "loss")
    report.legend_below(ax, ncols=2)
    fig.tight_layout()
    return fig
