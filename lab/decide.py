"""Does 4x smaller matter, and is it faster? The decision, per deployment, computed from the week-4 records.

Sizes come from the route records (lab.quantize), latencies from the one latency record (lab.latency, joined in by
latency.with_latency); a speedup whose p10-p90 ranges overlap is reported as not distinguishable, never as a
ratio. What each deployment budgets for is an assumption, written down here in one place and shown on the page next
to the verdict, so a reader can disagree with the assumption without having to distrust the measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab import bench, env, quantize, quantize_report

INT8_ROUTES = ("onnx-int8-qint8", "onnx-int8-quint8", "pytorch-int8")
SIZE_SHARE = 0.10     # size "matters" when the fp32 model takes more than a tenth of what the deployment budgets


@dataclass(frozen=True)
class Deployment:
    name: str
    device: str                    # whose records speak for it: "cuda" or "cpu"
    batch: int                     # the batch size it serves
    budget: str                    # what the model's bytes compete for
    budget_mb: float | None = None          # an assumption (MB); None: taken from the record (GPU memory)
    bandwidth_mb_s: float | None = None     # cold-start download speed (MB/s), an assumption
    proxy: str = ""                # when the measured hardware only stands in for the real one


DEPLOYMENTS = [
    Deployment("Kaggle GPU", "cuda", 32, "GPU memory (from the record)"),
    Deployment("laptop CPU", "cpu", 1, "8 GB of laptop RAM (assumed)", budget_mb=8000),
    Deployment("phone or edge device", "cpu", 1, "a 200 MB cellular app-download cap (assumed)", budget_mb=200,
               proxy="measured on this CPU; a phone CPU is slower, but the int8/fp32 ratio is the question"),
    Deployment("serverless, cold start", "cpu", 1, "downloading the model at 50 MB/s on each cold start (assumed)",
               bandwidth_mb_s=50),
]


def budget_of(dep: Deployment, rec: dict) -> float | None:
    """What the deployment budgets, in MB: its assumption, else the GPU memory the record's provenance names
    (lab.env reports GiB); None when neither is known."""
    if dep.budget_mb is not None:
        return dep.budget_mb
    gib = (rec["provenance"].get("gpu") or {}).get("memory_gb") or 0
    return gib * 2**30 / 1e6 or None


def _best_int8(rec: dict, batch: int) -> tuple[str, dict] | None:
    """The fastest int8 route that ran on the record's device, with its latency row."""
    lat = {(r["route"], r["batch"]): r for r in rec["result"]["latency"]}
    ok = [r["route"] for r in rec["result"]["routes"] if r["status"] == "ok" and r["route"] in INT8_ROUTES
          and (r["route"], batch) in lat]
    if not ok:
        return None
    best = min(ok, key=lambda name: lat[(name, batch)]["median_ms"])
    return best, lat[(best, batch)]


def decide(dep: Deployment, records: list[dict]) -> dict:
    """One row: sizes, whether the size matters and why, the int8 speedup and whether it is signal, a verdict."""
    row = {"deployment": dep.name, "budget": dep.budget}
    rec = quantize_report.record_for(records, dep.device)
    if rec is None:
        return {**row, "verdict": f"not measured: no {dep.device} record yet (run this page on a {dep.device.upper()} "
                                  f"machine to fill this row)"}
    best = _best_int8(rec, dep.batch)
    if best is None:
        return {**row, "verdict": f"no int8 route ran on {dep.device}"}
    route, int8_lat = best
    ref_lat = next(r for r in rec["result"]["latency"] if r["route"] == quantize.REFERENCE and r["batch"] == dep.batch)
    fp32_mb = quantize_report.route_row(rec, quantize.REFERENCE)["size_mb"]
    int8_mb = quantize_report.route_row(rec, route)["size_mb"]

    if dep.bandwidth_mb_s:      # cold start: the download is on the request's critical path
        saved_s = (fp32_mb - int8_mb) / dep.bandwidth_mb_s
        matters = saved_s > ref_lat["median_ms"] / 1e3
        why = f"saves {saved_s:.2g} s of download per cold start vs {ref_lat['median_ms']:.3g} ms per request"
    else:
        budget_mb = budget_of(dep, rec)
        share = fp32_mb / budget_mb if budget_mb else float("nan")
        matters = share > SIZE_SHARE
        why = f"fp32 takes {100 * share:.2g}% of it"

    sp = ref_lat["median_ms"] / int8_lat["median_ms"]
    signal = bench.distinguishable(ref_lat, int8_lat)
    faster = "yes" if sp > 1 and signal else ("no, slower" if signal else bench.NOT_DISTINGUISHABLE)
    if matters and faster == "yes":
        verdict = "int8: smaller and faster"
    elif matters:
        verdict = f"int8 only if size is the constraint: it costs {1 / sp:.2g}x the latency" if faster != "yes" \
            and signal else "int8 for the size; speed is a wash"
    elif faster == "yes":
        verdict = "int8 for speed; the size saving does not matter here"
    else:
        verdict = "stay in fp32 (or fp16 on a GPU): int8 buys nothing here"
    return {**row, "measured on": env.device_label(rec["provenance"]) + (f" ({dep.proxy})" if dep.proxy else ""),
            "batch": dep.batch, "fp32 MB": fp32_mb, "int8 MB": int8_mb, "size matters?": "yes" if matters else "no",
            "why": why, "int8 route": route,
            "speedup vs PyTorch fp32": sp if signal else bench.NOT_DISTINGUISHABLE, "faster?": faster,
            "verdict": verdict}


COLUMNS = ["deployment", "budget", "measured on", "batch", "fp32 MB", "int8 MB", "size matters?", "why",
           "int8 route", "speedup vs PyTorch fp32", "faster?", "verdict"]
# Twelve columns do not fit a page, and the page's point is that these are two questions: one table each.
SIZE_QUESTION = ["deployment", "budget", "fp32 MB", "int8 MB", "size matters?", "why"]
SPEED_QUESTION = ["deployment", "measured on", "batch", "int8 route", "speedup vs PyTorch fp32", "faster?", "verdict"]


def decision_table(records: list[dict]) -> list[dict]:
    """One row per deployment, every row with the same columns in COLUMNS order (None where not measured)."""
    return [{c: row.get(c) for c in COLUMNS} for row in (decide(dep, records) for dep in DEPLOYMENTS)]
