"""How big a pool length grouping should sort: padded tokens (the work) and test accuracy for each pool size.

lab.data.batch_order sorts each pool of `pool` random batches by length before cutting it into batches. A bigger
pool leaves less padding, but batches that hold ever more similar lengths; a pool of the whole epoch would be
sorted batches, which train badly. The HF Trainer's group_by_length sorts megabatches of 50 batches.

Every pool trains the same model on the same data, on several seeds (the seed moves the model's head, the batch
order and dropout): one seed's accuracy moves by a point from the order alone, so a pool is judged on the mean.
Padded tokens and accuracy are exact, repeatable numbers, so other jobs on the machine cannot sway them; the
JSON keeps each run's samples/s too, but the summary leaves the wall clock to benchmarks/train_throughput.py.

    python benchmarks/length_pool.py                      # cpu profile, 2,000 examples, one epoch (~15 min)
    python benchmarks/length_pool.py --profile smoke      # seconds: checks that it runs

Writes benchmarks/results/length_pool.json and a .md summary next to it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout without installing
from lab import data, get_profile, models, train  # noqa: E402
from lab.record import env

RESULTS = Path(__file__).resolve().parent / "results"
POOLS = (None, 4, 8, 16, 32)          # None: no grouping, random batches


def run(profile, pools, seeds: int) -> dict:
    splits = data.load_splits(profile)
    splits = data.Splits(splits.train, splits.validation.head(2 * profile.batch_size), splits.test)
    runs = []
    for pool in pools:
        for s in range(seeds):
            p = profile.but(seed=profile.seed + s,
                            extra={**profile.extra, "group_by_length": pool is not None, "pool": pool or 1})
            model, tokenizer = models.load(p.model, seed=p.seed)
            history = train.train(model, tokenizer, splits, p, progress=False)
            test = train.evaluate(model, data.encode(tokenizer, splits.test, p.max_length))
            runs.append({"pool": pool, "seed": p.seed, "test_accuracy": test["accuracy"],
                         "tokens": history["clock"]["tokens"], "padded_tokens": history["clock"]["padded_tokens"],
                         "samples_per_s": history["samples_per_s"]})
            print(f"[pool] {pool or 'random'}, seed {p.seed}: accuracy {test['accuracy']:.3f}, "
                  f"{history['clock']['padded_tokens']:,} padded tokens", flush=True)
    rows = []
    for pool in pools:
        rs = [r for r in runs if r["pool"] == pool]
        acc = [r["test_accuracy"] for r in rs]
        rows.append({"pool": pool, "mean_accuracy": statistics.mean(acc), "min_accuracy": min(acc),
                     "max_accuracy": max(acc), "padded_tokens": statistics.mean(r["padded_tokens"] for r in rs),
                     "samples_per_s": statistics.median(r["samples_per_s"] for r in rs)})
    return {"benchmark": "length_pool", "profile": profile.to_dict(), "seeds": seeds,
            "workload": {"train_examples": len(splits.train), "epochs": profile.epochs,
                         "test_examples": len(splits.test)},
            "real_tokens": runs[0]["tokens"],      # the same examples in every run: padding aside, equal work
            "rows": rows, "runs": runs, "provenance": env.provenance(train.default_device())}


def markdown(result: dict) -> str:
    prov, w, prof = result["provenance"], result["workload"], result["profile"]
    random_ = next(r for r in result["rows"] if r["pool"] is None)
    lines = [f"# Length grouping: pool size ({env.device_label(prov)}, torch {prov['libraries']['torch']}, "
             f"{prov['date'][:10]})", "",
             f"{prof['model']}, {w['train_examples']} training examples, {w['epochs']} epoch(s), batch "
             f"{prof['batch_size']}; test accuracy on {w['test_examples']} examples, mean and range over "
             f"{result['seeds']} seeds. Padded tokens: what the model computes on in one epoch, padding included; "
             f"the examples hold {result['real_tokens']:,} real tokens.", "",
             "| pool (batches sorted together) | padded tokens | of random batches' | test accuracy, mean | range |",
             "|---|---:|---:|---:|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['pool'] or 'none: random batches'} | {r['padded_tokens']:,.0f} | "
                     f"{r['padded_tokens'] / random_['padded_tokens']:.0%} | {r['mean_accuracy']:.3f} | "
                     f"{r['min_accuracy']:.3f} to {r['max_accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "length_pool.json")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile)
    if profile.name != "smoke":
        profile = profile.but(train_size=args.train_size, epochs=1)
    result = run(profile, POOLS, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
