"""Inference latency of every week-4 route (lab.quantize), with the spread of each row.

Same fine-tuned model, same test batches (real snippets, batch sizes from the profile), PyTorch fp32 as the
reference on the same device. Each latency row is the median of the profile's repeats after warm-up, with p10/p90
and the relative spread (p90 - p10) / median: two rows whose p10..p90 ranges overlap are not distinguishable here.
ONNX Runtime rows say where their nodes ran (lab.runtime). The 1-minute load average is recorded per row: on a
shared machine, other processes inflate PyTorch latency far more than ONNX Runtime's.

    python benchmarks/inference.py                    # the hardware's profile (cpu here: fine-tuned MiniLM), minutes
    python benchmarks/inference.py --profile smoke    # seconds: checks that it runs
    python benchmarks/inference.py --device cuda      # the GPU rows (fp16, ORT with CUDA asked for)

Writes benchmarks/results/inference.json (the full route table, every latency row with its spread, provenance)
and a .md summary next to it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout without installing
from lab import get_profile, models, variants  # noqa: E402
from lab.display import report, week4 as show4  # noqa: E402
from lab.recipes import latency as one_run, week4  # noqa: E402  (`latency` below is the table of rows)
from lab.record import env  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", help="smoke, cpu or gpu (default: $LAB_PROFILE, else from the hardware)")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if a GPU is visible, else cpu")
    ap.add_argument("--out", default=str(RESULTS / "inference.json"))
    args = ap.parse_args(argv)

    import torch
    profile = models.resolve_profile(get_profile(args.profile))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    result = week4.routes_record(profile, run_on=device)
    # timed as the course times them (lab.recipes.latency: the routes interleaved in one run), the full model's routes only
    timed = variants.time_models(one_run.full_model(profile), profile, device)
    result = {**result, "latency": timed["rows"], "latency_run": {k: v for k, v in timed.items() if k != "rows"}}
    record = {"name": "benchmarks/inference", "config": {"profile": profile.to_dict(), "device": device},
              "result": result, "provenance": env.provenance(device)}
    table = show4.slowdown_table([record])
    latency = pd.DataFrame(result["latency"])

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**record, "table": table}, indent=2, default=str) + "\n")
    md = [f"# Inference latency: {result['model']} on {env.device_label(record['provenance'])}",
          "",
          f"Profile `{profile.name}`, {result['n_test']} test snippets, {result['threads']} threads, "
          f"{timed['rounds']} interleaved rounds after warm-up (lab.recipes.latency). Speedups are against PyTorch fp32 on the "
          f"same device and batch. 1-minute load average during the rows: {latency['load_avg'].min()} to "
          f"{latency['load_avg'].max()} on {record['provenance']['cpu_count']} cores (a load above the thread count "
          f"means other processes were competing, and PyTorch rows suffer most).",
          "",
          report.table(table).data,
          "",
          "## Every latency row, with its spread",
          "",
          variants.to_markdown(index=False, floatfmt=".3g"),
          ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
