"""Training throughput: lab.train against the Hugging Face Trainer and a naive padded loop, side by side.

Same model (fresh from the same seed for every row), same data, same hyperparameters (AdamW, linear warmup and
decay, gradient clipping, batch size), the same number of optimizer steps and the same torch thread count: one
process runs every row. Rows:

  lab.train                   length-grouped batches (lab.data.batch_order, pool of lab.data.POOL batches), dynamic padding
  lab.train, no grouping      random batches, dynamic padding
  HF Trainer                  DataCollatorWithPadding, fed the very batches of the row above (a sampler that
                              yields lab.data.batch_order's random order): equal work, so the two loops compare
  HF Trainer, its own length  the Trainer as a user would configure it instead: group_by_length (transformers 5:
  grouping                    train_sampling_strategy="group_by_length"), DataCollatorWithPadding, its own
                              LengthGroupedSampler (longest batch first, sorted within megabatches, where lab
                              shuffles the batch order); not in the best-row accuracy target, which it may lose
  naive loop, padded to 128   random batches padded to max_length, the loop many tutorials write

Every row trains in lab.train's precision on this device (lab.precision.precision_for: bf16 on a CPU with native
bf16 or a GPU of compute capability 8.0+, fp16 on a T4, else fp32; `--precision` to ask for another): the Trainer
rows with TrainingArguments(bf16=True) or (fp16=True), the naive loop under torch.autocast on the device's type.
The results name the precision, and the targets that compare with the Trainer count only in the same precision.

One clock for every row (step_phases.training_clock): from the model's first training forward to the end of the
training call, less lab.train's evaluation. Setup before the first step (tokenization, optimizer, the Trainer's
dataloader) is outside it for every loop. The rows run `--repeats` times, interleaved and in a rotated order,
after an untimed warm-up of each; each row reports the median and the spread. Round r runs every row on seed
profile.seed + r (batch order, dropout, the new head's initialisation): one seed's test accuracy moves by about two
points (benchmarks/results/length_pool.md), so a row's test accuracy is its mean over the rounds' seeds. lab.train's
speed counts only if it did not buy it with accuracy: its mean within one point of the Trainer's (same batches, same
precision) and of the best row's (the Trainer's own length grouping left out of the best). Other rows more than a
point below the best are shown as such; they do not fail lab.train (the Trainer and lab.train without grouping, on
the very same batches and seeds, once ended 1.1 points apart: seed noise, as the lockstep shows their arithmetic
level). The Trainer's own length grouping is set beside the rest seed by seed, with the order its sampler yielded
(train_rows.order_stats): whether its accuracy holds up is measured, not assumed.

Before the rows: where one epoch's time goes, phase by phase, for lab.train (no grouping) and the Trainer on the
same batches (step_phases), and what each candidate change to lab.train's step costs (step_costs).

    python benchmarks/train_throughput.py                  # cpu profile, 2,000 examples, one epoch (~30 min)
    python benchmarks/train_throughput.py --compile        # also torch.compile against eager (~2 min more)
    python benchmarks/train_throughput.py --profile smoke --repeats 1   # seconds: checks that it runs

Writes benchmarks/results/train_throughput.json (everything measured, provenance) and a .md summary next to it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import checkpoint, data, get_profile, train  # noqa: E402
from lab.record import env
import step_costs  # noqa: E402
from step_phases import PHASES, REST  # noqa: E402
from train_rows import (LAB, NO_GROUPING, PADDED, ROWS, TRAINER, TRAINER_GROUPED, lockstep_profile,  # noqa: E402
                        operator_profile, order_stats, phase_profile)

RESULTS = Path(__file__).resolve().parent / "results"
ACCURACY_TOLERANCE = 0.01   # one point of mean test accuracy: lab.train's speed counts only within it (see above)
# Rows shown against the best row's accuracy but not part of it: the Trainer's own length grouping is expected to
# lose accuracy (sorted batches), and a row that may collapse should not set, or be, the bar lab.train is held to.
NOT_IN_BEST = (TRAINER_GROUPED,)


def run(profile, repeats: int, with_compile: bool) -> dict:
    splits = data.load_splits(profile)
    # lab.train evaluates after each epoch; a small validation set keeps that cheap, and its time is subtracted.
    splits = data.Splits(splits.train, splits.validation.head(2 * profile.batch_size), splits.test)
    # Warm-up, untimed, of every row: the first run of a loop in a process pays one-off costs (imports, oneDNN
    # kernels per new shape, allocator growth; 2x on the first 20 steps here), which would penalise whichever
    # row ran first. Ten batches cover most sequence widths.
    warm = data.Splits(splits.train.head(10 * profile.batch_size), splits.validation.head(8), splits.test)
    for name, fn in ROWS.items():
        print(f"[bench] warm-up: {name}", flush=True)
        fn(profile, warm)
    print("[bench] where the time goes (one epoch each, phase by phase) ...", flush=True)
    phases = phase_profile(profile, splits, rounds=repeats)
    print("[bench] operator by operator (torch.profiler) ...", flush=True)
    operators = operator_profile(profile, splits, active=4 if profile.name == "smoke" else 16)
    print("[bench] the two loops in lockstep ...", flush=True)
    paired = lockstep_profile(profile, splits, rounds=2)
    print("[bench] candidate changes, each on its own ...", flush=True)
    costs = step_costs.candidates(profile, splits)
    compiled = step_costs.compile_cost(profile, splits) if with_compile else None
    test_enc = {}
    runs, accuracy = {name: [] for name in ROWS}, {}
    names = list(ROWS)
    for r in range(repeats):
        seeded = replace(profile, seed=profile.seed + r)     # every row of a round on one seed, another per round
        for name in names[r % len(names):] + names[:r % len(names)]:     # rotated: no row always goes first
            print(f"[bench] round {r + 1}/{repeats} (seed {seeded.seed}): {name} ...", flush=True)
            load_before = os.getloadavg()[0]
            res = ROWS[name](seeded, splits)
            fp = checkpoint.fingerprint(checkpoint.weights(res["model"]))
            if fp not in accuracy:     # the same weights (same seed, same loop) need evaluating once
                enc = test_enc.setdefault(name, data.encode(res["tokenizer"], splits.test, profile.max_length))
                test = train.evaluate(res["model"], enc, logits=True)
                preds = test["logits"].argmax(-1).tolist()
                accuracy[fp] = {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
                                # a model that collapsed onto one class puts (nearly) every prediction in it
                                "predicted_majority_share": max(map(preds.count, set(preds))) / len(preds)}
            n = len(splits.train) * profile.epochs
            runs[name].append({"seed": seeded.seed, "train_s": res["train_s"], "samples_per_s": n / res["train_s"],
                               "cpu_s": res["cpu_s"],
                               "own_clock_s": res["own_clock_s"], "padded_tokens": res["padded_tokens"],
                               "optimizer": res["optimizer"], "precision": res["precision"],
                               "sampler": res.get("sampler"), "weights_sha256": fp,
                               "test_accuracy": accuracy[fp]["accuracy"], "test_macro_f1": accuracy[fp]["macro_f1"],
                               "predicted_majority_share": accuracy[fp]["predicted_majority_share"],
                               "batch_order": order_stats(res["batches"], res["steps_per_epoch"]),
                               # 1-minute load average before and after: above the core count, other processes
                               # competed for the CPU and the row's time is inflated
                               "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
            print(f"[bench]   {n / res['train_s']:.1f} samples/s, test accuracy {accuracy[fp]['accuracy']:.3f}, "
                  f"{res['precision']}", flush=True)
    return summarise(profile, splits, runs, phases, costs, compiled, operators, paired)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _order(rs: list[dict]) -> dict:
    """A row's batch order over its seeds: the first seed's first batches, the medians of the correlations."""
    orders = [r["batch_order"] for r in rs]
    return {"first_longest": orders[0]["first_longest"], "longest_at": [o["longest_at"] for o in orders],
            **{k: _median(o[k] for o in orders)
               for k in ("position_length_r", "consecutive_length_r", "descending_share", "majority_label_share")}}


def _precision_of(rs: list[dict]) -> str:
    return "/".join(dict.fromkeys(r["precision"] for r in rs))     # one name, unless the seeds differed


def summarise(profile, splits, runs, phases, costs, compiled, operators, paired) -> dict:
    rows = []
    for name, rs in runs.items():
        sps = [r["samples_per_s"] for r in rs]
        rows.append({"row": name, "samples_per_s": statistics.median(sps), "min": min(sps), "max": max(sps),
                     "cpu_s": statistics.median(r["cpu_s"] for r in rs), "precision": _precision_of(rs),
                     "test_accuracy": statistics.mean(r["test_accuracy"] for r in rs),   # over the seeds
                     "test_accuracy_by_seed": {r["seed"]: r["test_accuracy"] for r in rs},
                     "predicted_majority_share": statistics.mean(r["predicted_majority_share"] for r in rs),
                     "padded_tokens": round(statistics.median(r["padded_tokens"] for r in rs)),
                     "optimizer": rs[0]["optimizer"], "sampler": rs[0]["sampler"], "batch_order": _order(rs),
                     "in_best": name not in NOT_IN_BEST, "runs": rs})
    by = {r["row"]: r for r in rows}
    best_row = max((r for r in rows if r["in_best"]), key=lambda r: r["test_accuracy"])
    best = best_row["test_accuracy"]
    for r in rows:
        r["counts"] = r["test_accuracy"] >= best - ACCURACY_TOLERANCE
    ratio = {f"{a} / {b}": by[a]["samples_per_s"] / by[b]["samples_per_s"]
             for a, b in [(LAB, TRAINER), (LAB, PADDED), (NO_GROUPING, TRAINER), (LAB, NO_GROUPING),
                          (LAB, TRAINER_GROUPED), (TRAINER_GROUPED, TRAINER)]}
    lab_precision = by[LAB]["precision"]
    precision = {"lab.train": lab_precision,
                 "chosen_by": ("--precision" if profile.extra.get("precision") else
                               f"lab.precision.precision_for({train.default_device()!r})"),
                 "rows": {r["row"]: r["precision"] for r in rows},
                 "all_same": all(r["precision"] == lab_precision for r in rows)}
    same_as_trainer = by[TRAINER]["precision"] == lab_precision     # the Trainer targets count only then
    # The loop itself is held to the lockstep (the same batches, step by step, so drift hits both alike): level
    # with the Trainer, within 3%. Its speedup comes from what it feeds the model: length-grouped batches.
    level = paired.get("ratio") if isinstance(paired, dict) else None
    targets = {"lab.train, no grouping level with the Trainer in lockstep (>= 0.97x)":
                   bool(level and level >= 0.97) and same_as_trainer,
               "lab.train >= 1.6x the Trainer": ratio[f"{LAB} / {TRAINER}"] >= 1.6 and same_as_trainer,
               "lab.train >= 3x the padded loop":
                   ratio[f"{LAB} / {PADDED}"] >= 3.0 and by[PADDED]["precision"] == lab_precision,
               "lab.train's test accuracy within one point of the Trainer's":
                   abs(by[LAB]["test_accuracy"] - by[TRAINER]["test_accuracy"]) <= ACCURACY_TOLERANCE
                   and same_as_trainer,
               "lab.train's test accuracy within one point of the best row's": by[LAB]["counts"]}
    return {"benchmark": "train_throughput", "precision": precision, "profile": profile.to_dict(),
            "workload": {"train_examples": len(splits.train), "epochs": profile.epochs,
                         "seeds": sorted({run["seed"] for rs in runs.values() for run in rs}),
                         "steps": math.ceil(len(splits.train) / profile.batch_size) * profile.epochs,
                         "test_examples": len(splits.test), "repeats": len(next(iter(runs.values()))),
                         "torch_threads": torch.get_num_threads()},
            "rows": rows, "best_row": best_row["row"], "ratios": ratio, "targets_met": targets,
            "own_grouping": own_grouping(by, rows), "phases": phases, "operators": operators,
            "lockstep": paired, "candidates": costs,
            "compile": compiled, "provenance": env.provenance(train.default_device())}


def own_grouping(by: dict, rows: list[dict]) -> dict:
    """The Trainer's own length grouping against lab.train, seed by seed, and whether it lost accuracy beyond seed
    noise: below every other row on every seed by more than the largest seed-to-seed spread among the other rows."""
    g = by[TRAINER_GROUPED]
    others = [r for r in rows if r["row"] != TRAINER_GROUPED]
    seeds = list(g["test_accuracy_by_seed"])
    spread = max(max(r["test_accuracy_by_seed"].values()) - min(r["test_accuracy_by_seed"].values()) for r in others)
    margin = min(r["test_accuracy_by_seed"][s] - g["test_accuracy_by_seed"][s] for r in others for s in seeds)
    return {"lab_minus_it_by_seed": {s: by[LAB]["test_accuracy_by_seed"][s] - g["test_accuracy_by_seed"][s]
                                     for s in seeds},
            "smallest_margin_below_another_row": margin, "largest_seed_spread_of_the_others": spread,
            "lost_beyond_seed_noise": margin > spread}


def points_below(rows: list[dict], row: dict) -> str:
    """'1.1 points below' the best row's mean test accuracy (of the rows in the best, NOT_IN_BEST left out)."""
    gap = 100 * (max(r["test_accuracy"] for r in rows if r.get("in_best", True)) - row["test_accuracy"])
    return f"{gap:.1f} points below" if gap >= 0 else f"{-gap:.1f} points above"


def _fmt_r(x) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _precision_md(result: dict) -> list[str]:
    pr = result["precision"]
    how = {"bf16": "TrainingArguments(bf16=True)", "fp16": "TrainingArguments(fp16=True)",
           "fp32": "TrainingArguments in fp32"}
    autocast = {"bf16": "torch.autocast(bfloat16)", "fp16": "torch.autocast(float16) and a GradScaler",
                "fp32": "no autocast"}
    lab = pr["lab.train"]
    chosen = ("as asked (--precision)" if pr["chosen_by"] == "--precision" else
              f"{pr['chosen_by']}: this device's own")
    if pr["all_same"]:
        rest = (f"every row trained in {lab}: the Trainer rows with {how.get(lab, lab)}, the naive loop with "
                f"{autocast.get(lab, lab)}.")
    else:
        rest = "NOT every row in the same precision: " + "; ".join(f"{k} {v}" for k, v in pr["rows"].items()) + "."
    return [f"Precision: lab.train trained in **{lab}** ({chosen}); {rest}", ""]


def _own_grouping_md(result: dict) -> list[str]:
    """Two sentences on the Trainer's own length grouping, every number from the result: its speed and accuracy
    against the other rows, seed by seed; then the order its sampler yielded against lab.train's."""
    by = {r["row"]: r for r in result["rows"]}
    g, lab, hf, best = by[TRAINER_GROUPED], by[LAB], by[TRAINER], by[result["best_row"]]
    og, go, lo = result["own_grouping"], g["batch_order"], lab["batch_order"]
    spread, margin = (100 * og[k] for k in ("largest_seed_spread_of_the_others", "smallest_margin_below_another_row"))
    verdict = (f"below every other row on every seed, by at least {margin:.1f} points, more than any other row's "
               f"seed-to-seed spread ({spread:.1f} points): the accuracy loss holds" if og["lost_beyond_seed_noise"]
               else f"not below every other row on every seed by more than the other rows' seed-to-seed spread "
                    f"({spread:.1f} points; smallest margin {margin:+.1f}): no accuracy loss beyond seed noise")
    gaps = ", ".join(f"{100 * d:+.1f}" for d in og["lab_minus_it_by_seed"].values())
    listed = lambda xs: ", ".join(map(str, xs))                                          # noqa: E731
    accuracy = (f"{TRAINER_GROUPED} ({g['sampler']}, {g['precision']}) ran at {g['samples_per_s']:.1f} samples/s, "
                f"{g['samples_per_s'] / hf['samples_per_s']:.2f}x the Trainer on random batches, on "
                f"{g['padded_tokens']:,} padded tokens (lab.train {lab['padded_tokens']:,}), to a mean test "
                f"accuracy of {g['test_accuracy']:.3f} over {len(og['lab_minus_it_by_seed'])} seed(s), "
                f"{points_below(result['rows'], g)} the best row ({best['row']}, {best['test_accuracy']:.3f}); "
                f"lab.train's accuracy minus its, seed by seed: {gaps} points, so it is {verdict}.")
    order = (f"Its sampler's order, as the collator met it (lab.train's in brackets): the longest example of the "
             f"first batches on seed {g['runs'][0]['seed']} {listed(go['first_longest'])} "
             f"({listed(lo['first_longest'])}); the longest batch was batch "
             f"{listed(i + 1 for i in go['longest_at'])} of {g['runs'][0]['batch_order']['batches']} "
             f"({listed(i + 1 for i in lo['longest_at'])}); batch position against batch length "
             f"r = {_fmt_r(go['position_length_r'])} ({_fmt_r(lo['position_length_r'])}), a batch's length against "
             f"the next one's r = {_fmt_r(go['consecutive_length_r'])} ({_fmt_r(lo['consecutive_length_r'])}), "
             f"batches no longer than the one before {_pct(go['descending_share'])} "
             f"({_pct(lo['descending_share'])}); the most common label's share of a batch "
             f"{_pct(go['majority_label_share'])} ({_pct(lo['majority_label_share'])}); test predictions in the "
             f"most predicted class {_pct(g['predicted_majority_share'])} ({_pct(lab['predicted_majority_share'])}).")
    return ["", f"{accuracy} {order}"]


def markdown(result: dict) -> str:
    prov, w, prof = result["provenance"], result["workload"], result["profile"]
    loads = [x for r in result["rows"] for run in r["runs"] for x in run["load_average"]]
    lines = [f"# Training throughput ({env.device_label(prov)}, torch {prov['libraries']['torch']}, "
             f"{w['torch_threads']} threads, {prov['date'][:10]})", "",
             f"{prof['model']}, {w['train_examples']} training examples, {w['epochs']} epoch(s), {w['steps']} "
             f"optimizer steps, batch {prof['batch_size']}, lr {prof['lr']}; test accuracy on {w['test_examples']} "
             f"examples. Each row ran {w['repeats']} times, interleaved, round r on seed {prof['seed']} + r; samples/s "
             "is the median, with the range; test accuracy is the mean over the seeds, each seed's in brackets. "
             "Padded tokens: the median over the seeds' batch orders. CPU s: "
             "the process's CPU seconds over the same window, all threads (median): other processes sway it less than "
             "the wall clock.", "", *_precision_md(result),
             "| row | precision | samples/s | range | CPU s | test accuracy | within a point of the best "
             "| padded tokens | optimizer |",
             "|---|---|---:|---|---:|---:|---|---:|---|"]
    for r in result["rows"]:
        within = 'yes' if r['counts'] else 'no: ' + points_below(result['rows'], r)
        if not r.get("in_best", True):
            within = f"not in the best ({points_below(result['rows'], r)})"
        lines.append(f"| {r['row']} | {r['precision']} | {r['samples_per_s']:.1f} | {r['min']:.1f} to {r['max']:.1f} | "
                     f"{r['cpu_s']:.1f} | "
                     f"{r['test_accuracy']:.3f} ({', '.join(f'{a:.3f}' for a in r['test_accuracy_by_seed'].values())})"
                     f" | {within} | {r['padded_tokens']:,} | {r['optimizer']} |")
    by = {r["row"]: r for r in result["rows"]}
    grouped, random_ = by[LAB]["padded_tokens"], by[NO_GROUPING]["padded_tokens"]
    lines += ["", f"Length grouping cuts the padded tokens the model computes on from {random_:,} (random batches) to "
                  f"{grouped:,} ({grouped / random_:.0%}); the batches are still drawn at random from pools of "
                  f"{prof['extra'].get('pool', data.POOL)} batches, so test accuracy does not suffer."]
    lines += _own_grouping_md(result)
    lines += ["", "| ratio of samples/s | |", "|---|---:|"]
    for k, v in result["ratios"].items():
        a, b = (by[name]["precision"] for name in k.split(" / "))
        lines.append(f"| {k} ({'both ' + a if a == b else a + ' against ' + b}) | {v:.2f}x |")
    targets = "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in result["targets_met"].items())
    lines += ["", f"Targets (the Trainer and the padded loop held to them in lab.train's precision, "
                  f"{result['precision']['lab.train']}): {targets}",
              "", f"Noise: 1-minute load average {min(loads):.2f} to {max(loads):.2f} on {prov['cpu_count']} cores "
                  f"during the rows (other processes shared the machine above {prov['cpu_count']}); each row's range "
                  "above is its spread over the rounds."]
    lines += ["", "## Where one epoch's time goes (ms per step, no length grouping, the same batches)", "",
              "Timed from outside both loops (benchmarks/step_phases.py), progress bars on. Exclusive: a phase "
              "nested in another counts once. Each loop ran one epoch per round, the loops alternating; each cell is "
              "the median over the rounds. Whole step by round: " + "; ".join(
                  f"{n} {', '.join(f'{x:.0f}' for x in v['step_ms_by_round'])} ms" for n, v in result["phases"].items())
              + ".", ""]
    names = list(result["phases"])
    lines += ["| phase | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for phase in (*PHASES, REST):
        lines.append(f"| {phase} | " + " | ".join(f"{result['phases'][n]['ms_per_step'][phase]:.1f}" for n in names)
                     + " |")
    lines.append("| **whole step** | " + " | ".join(f"**{result['phases'][n]['step_ms']:.1f}**" for n in names) + " |")
    lab_ms, hf_ms = (result["phases"][n]["ms_per_step"] for n in names)
    arithmetic = ("forward", "backward", "gradient clipping", "optimizer step")
    loop = [ph for ph in lab_ms if ph not in arithmetic]
    extra = sum(hf_ms[ph] - lab_ms[ph] for ph in loop)
    lines += ["", f"Outside the arithmetic ({', '.join(arithmetic)}) the {names[1]} step costs {extra:+.1f} ms "
                  f"against the {names[0]} step (batch building, zero_grad, the progress bar and the rest of the "
                  f"loop): on equal arithmetic that alone predicts a ratio of "
                  f"{(result['phases'][names[0]]['step_ms'] + extra) / result['phases'][names[0]]['step_ms']:.3f}x. "
                  f"The arithmetic phases differ by {sum(hf_ms[ph] - lab_ms[ph] for ph in arithmetic):+.1f} ms; "
                  "both loops call the same model, fused AdamW and clipping on the same batches, so that difference "
                  "measures the machine (other processes), not the loops, and so does the distance between the "
                  "predicted and the measured ratio."]
    lines += _operators_md(result.get("operators")) + _lockstep_md(result.get("lockstep"), result["ratios"])
    step_ms = result["phases"][names[0]]["step_ms"]
    lines += ["", "## What each candidate change bought (ms per step, each measured on its own)", "",
              "Variants interleaved call by call on the real model, gradients and batches (benchmarks/step_costs.py)"
              f"; share of lab.train's step of {step_ms:.0f} ms above.", "",
              "| change | variant | ms per step | share of a step | in lab.train | note |",
              "|---|---|---:|---:|---|---|"]
    for i, c in enumerate(result["candidates"]):
        first = i == 0 or result["candidates"][i - 1]["change"] != c["change"]     # name and note once per change
        lines.append(f"| {c['change'] if first else ''} | {c['variant']} | {c['ms_per_step']:.3g} | "
                     f"{100 * c['ms_per_step'] / step_ms:.2f}% | {'yes' if c['in lab.train'] else 'no'} | "
                     f"{c['note'] if first else ''} |")
    bought = []
    for change in dict.fromkeys(c["change"] for c in result["candidates"]):
        variants = [c for c in result["candidates"] if c["change"] == change]
        before = [c["ms_per_step"] for c in variants if c["before"]]
        now = [c["ms_per_step"] for c in variants if c["in lab.train"]]
        if before and now:
            bought.append(f"{change} {before[0] - now[0]:.3g} ms ({100 * (before[0] - now[0]) / step_ms:.2g}%)")
    lines += ["", "What the changes bought, per step: " + "; ".join(bought) + ". The rest of the table: measured, "
              "and not taken (no gain, or not worth what it costs)."]
    if result["compile"]:
        c = result["compile"]
        eager, comp = c["eager"], c["torch.compile(dynamic=True)"]
        saved = eager["median_later_step_ms"] - comp["median_later_step_ms"]
        verdict = (f"not taken: once compiled a step is no faster ({saved:+.0f} ms)" if saved <= 0 else
                   f"it would repay its compile time after {(comp['total_s'] - eager['total_s']) * 1000 / saved:.0f} "
                   f"steps at {saved:.0f} ms a step")
        lines += ["", f"torch.compile, {c['steps']} steps: eager {eager['total_s']:.1f} s (median step "
                      f"{eager['median_later_step_ms']:.0f} ms), compiled {comp['total_s']:.1f} s, of which the first "
                      f"two steps (compiling) {comp['first_two_s']:.1f} s, then a median step of "
                      f"{comp['median_later_step_ms']:.0f} ms: {verdict}."]
    else:
        lines += ["", "torch.compile: not measured in this run (`--compile`)."]
    return "\n".join(lines) + "\n"


def _operators_md(ops) -> list[str]:
    if not ops:
        return []
    a, b = ops["loops"]
    lines = ["", f"## Operator by operator (torch.profiler, {ops['steps']} steps of each loop, the same batches)", "",
             f"{a} makes {ops['calls_per_step'][0]:,.0f} operator calls a step and {b} {ops['calls_per_step'][1]:,.0f}; "
             f"the operators' own CPU time is {ops['self_ms_per_step'][0]:.0f} and {ops['self_ms_per_step'][1]:.0f} ms "
             "a step (all threads). The ten largest by own time:", "",
             f"| operator | calls, {a} | ms, {a} | calls, {b} | ms, {b} |", "|---|---:|---:|---:|---:|"]
    for r in ops["top"]:
        lines.append(f"| `{r['operator']}` | {r['a']['calls']:g} | {r['a']['self_ms']:.1f} | {r['b']['calls']:g} | "
                     f"{r['b']['self_ms']:.1f} |")
    differ = [f"`{r['operator']}` ({r['a']['calls']:g} against {r['b']['calls']:g})" for r in ops["differ"]]
    lines += ["", "Operators called a different number of times a step: " + ("; ".join(differ) if differ else "none")
              + ". Everything else is the same call for call: the model's forward and backward, the clipping and the "
              "fused AdamW step."]
    return lines


def _lockstep_md(ls, ratios) -> list[str]:
    if not ls:
        return []
    a, b = ls["a"], ls["b"]
    lines = ["", "## The two loops in lockstep (the same batches, step by step)", "",
             "Each loop in its own thread, handing over after every optimizer step, so their steps alternate and each "
             "pair meets the same machine (benchmarks/step_lockstep.py); whole steps only, setup and evaluation left "
             "out. Which loop leads each pair alternates by run.", "",
             f"| run | leads each pair | steps | {a}, s | {b}, s | speed of {a} / {b} |", "|---|---|---:|---:|---:|---:|"]
    for i, r in enumerate(ls["runs"], 1):
        lines.append(f"| {i} | {r['first']} | {r['steps']} | {r[f'{a} s']:.1f} | {r[f'{b} s']:.1f} | {r['ratio']:.3f}x |")
    rows_ratio = ratios[f"{NO_GROUPING} / {TRAINER}"]
    lines += ["", f"Over both runs: {ls['ms_per_step'][a]:.0f} ms a step for {a}, {ls['ms_per_step'][b]:.0f} ms for "
                  f"{b}: {ls['ratio']:.3f}x. The timed rows above, each run on its own a minute apart, put the same "
                  f"two loops at {rows_ratio:.2f}x."]
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of every row, interleaved")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile against eager (minutes)")
    ap.add_argument("--precision", choices=train.PRECISIONS, default=None,
                    help="train every row in this precision instead of lab.train's own on this device (precision_for)")
    ap.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile)
    if profile.name != "smoke":
        profile = profile.but(train_size=args.train_size, epochs=args.epochs)
    if args.precision:
        profile = profile.but(extra={**profile.extra, "precision": args.precision})
    result = run(profile, args.repeats, args.compile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
