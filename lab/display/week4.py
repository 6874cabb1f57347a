"""What week 4 shows: the route tables, the latency chart, the placement report, the decision per deployment, and
the numbers the page's prose quotes. Everything here reads the records lab.recipes.week4 and lab.recipes.latency
wrote; nothing measures. Route records carry their latency rows only once latency.with_latency has joined them in.

    records = latency.with_latency(store.load_all("week4/routes"), store.load_all("latency/variants"))
    routes = week4.slowdown_table(records)                           # route x hardware rows
    s = week4.summary(cpu_record, profile.bench_batch_sizes)          # s.same_runtime[32], s.noise_note
    week4.decision_table(records)                                     # per lab.decide.DEPLOYMENTS
"""
from __future__ import annotations

from dataclasses import dataclass


from lab import bench, decide
from lab.display import latency, phrases, report
from lab.quantize import REFERENCE, ROUTES
from lab.record import env


def _latency_index(result: dict) -> dict:
    """(route, batch) -> latency row."""
    return {(r["route"], r["batch"]): r for r in result["latency"]}


def _speedup_cell(ref: dict | None, mine: dict | None) -> str:
    """'1.65' when the two ranges are apart, 'not distinguishable here' when they overlap, '' when unmeasured."""
    if not (mine and ref):
        return ""
    if mine is ref:
        return "1 (reference)"
    if not bench.distinguishable(ref, mine):
        return latency.NOT_DISTINGUISHABLE
    return f"{ref['median_ms'] / mine['median_ms']:.3g}"


def _ms(row: dict | None) -> str:
    """'12.3 (11.9–13.0)': median with the p10-p90 range, in ms (lab.display.latency.ms)."""
    return "" if row is None else latency.ms(row)


def slowdown_table(records: list[dict]) -> list[dict]:
    """Route x device rows from every record: size, latency per batch size, speedup against PyTorch fp32 on the
    same device and batch, accuracy change, and where the route really ran (with the hardware it was measured on).
    Rows that could not run keep their reason. Too wide for one page: SIZE_COLUMNS and speed_columns() split it."""
    rows = []
    for rec in records:
        res, hw = rec["result"], env.device_label(rec["provenance"])
        lat = _latency_index(res)
        batches = sorted({b for _, b in lat})
        for r in res["routes"]:
            row = {"hardware": hw, "model": res["model"], "route": r["route"]}
            if r["status"] != "ok":
                rows.append({**row, "where it ran": f"{r['status']}: {r['reason']}"})
                continue
            row.update({"size (MB)": r["size_mb"], "size ratio": r["size_ratio"]})
            for b in batches:
                mine, ref = lat.get((r["route"], b)), lat.get((REFERENCE, b))
                row[f"batch {b} ms (p10-p90)"] = _ms(mine)
                row[f"speedup b{b}"] = _speedup_cell(ref, mine)
            row.update({"Δ accuracy (points)": 100 * r["accuracy_delta"], "largest logit change": r["max_logit_diff"],
                        "where it ran": r["ran_on"]})
            rows.append(row)
    return rows


# The two questions of the week, one table each: what int8 does to the file and the predictions, and to the speed.
SIZE_COLUMNS = ["hardware", "route", "size (MB)", "size ratio", "Δ accuracy (points)", "largest logit change",
                "where it ran"]


def speed_columns(rows: list[dict]) -> list[str]:
    """hardware, route, then each batch size's latency and speedup, in the order slowdown_table made them."""
    timed = [c for c in dict.fromkeys(c for row in rows for c in row) if c.startswith(("batch ", "speedup "))]
    return ["hardware", "route", *timed]


def route_row(record: dict, route: str) -> dict | None:
    """One route's row of a record's result (None if the route is not in it)."""
    return next((r for r in record["result"]["routes"] if r["route"] == route), None)


def speedup(record: dict, route: str, batch: int) -> float | None:
    """PyTorch fp32 median latency / the route's, on the record's device, at one batch size (>1 = faster)."""
    lat = _latency_index(record["result"])
    mine, ref = lat.get((route, batch)), lat.get((REFERENCE, batch))
    return ref["median_ms"] / mine["median_ms"] if mine and ref else None


@dataclass(frozen=True)
class Summary:
    """The numbers the week-4 prose quotes from one hardware's record: named, so a typo fails loudly."""
    result: dict              # the record's result (model, n_test, threads, routes, latency)
    small: int                # the smallest and largest benchmarked batch sizes
    large: int
    row: dict                 # route -> its row (size_mb, size_ratio, accuracy_delta, max_logit_diff, ...)
    lat: dict                 # (route, batch) -> latency row (median_ms, p10_ms, p90_ms, seq_len, load_avg, ...)
    speedup: dict             # route -> {batch: x against PyTorch fp32}, for ORT int8, PyTorch int8, ORT fp32
    as_fast: dict             # route -> {batch: '1.7x as fast' or 'not distinguishable here'}, same routes
    as_fast_at: dict          # route -> one clause over both batch sizes (lab.display.phrases.speed_at)
    same_runtime: dict        # batch -> ORT int8 against ORT fp32: the honest comparison for int8
    same_runtime_text: dict   # batch -> that ratio in words, or 'not distinguishable here'
    beyond_noise: dict        # batch -> whether those two routes' p10-p90 ranges are apart
    noise_note: str           # the sentence that says so


QUOTED = ("onnx-int8-qint8", "pytorch-int8", "onnx-fp32")     # the routes whose speedup the prose quotes


def summary(record: dict, batch_sizes) -> Summary:
    """Derive what the week-4 prose quotes, so the page only displays. Speedups are against PyTorch fp32 on the same
    hardware and batch."""
    res = record["result"]
    small, large = min(batch_sizes), max(batch_sizes)
    lat = _latency_index(res)
    same_runtime = {b: lat[("onnx-fp32", b)]["median_ms"] / lat[("onnx-int8-qint8", b)]["median_ms"]
                    for b in (small, large)}
    beyond_noise = {b: bench.distinguishable(lat[("onnx-fp32", b)], lat[("onnx-int8-qint8", b)])
                    for b in (small, large)}
    apart = [f"batch {b}" for b, ok in beyond_noise.items() if ok]
    overlap = [f"batch {b}" for b, ok in beyond_noise.items() if not ok]
    noise_note = (f"the two routes' p10-p90 ranges are apart at {' and '.join(apart)}" if apart else
                  "the two routes' p10-p90 ranges overlap at every batch size")
    if apart and overlap:
        noise_note += f" and overlap at {' and '.join(overlap)}, where the difference is within this machine's noise"
    return Summary(
        result=res, small=small, large=large,
        row={r["route"]: r for r in res["routes"]},
        lat=lat,
        speedup={route: {b: speedup(record, route, b) for b in (small, large)} for route in QUOTED},
        as_fast={route: {b: latency.as_fast(lat[(REFERENCE, b)], lat[(route, b)]) for b in (small, large)}
                 for route in QUOTED},
        as_fast_at={route: phrases.speed_at({b: lat.get((REFERENCE, b)) for b in (small, large)},
                                            {b: lat.get((route, b)) for b in (small, large)})
                    for route in QUOTED},
        same_runtime=same_runtime,
        same_runtime_text={b: latency.as_fast(lat[("onnx-fp32", b)], lat[("onnx-int8-qint8", b)])
                           for b in (small, large)},
        beyond_noise=beyond_noise,
        noise_note=noise_note,
    )


def latency_plot(records: list[dict]):
    """Median latency per route and batch size as a dot, its p10-p90 range as a line through it; one panel per
    hardware, stacked. Dots, not bars, on the log axis: routes differ by multiples, and a bar's length on a log
    axis (from an arbitrary left edge) means nothing."""
    import matplotlib.pyplot as plt
    routes_per = [sum(r["status"] == "ok" for r in rec["result"]["routes"]) for rec in records]
    fig, axes = plt.subplots(len(records), 1, squeeze=False,
                             figsize=(report.PHONE_FIG_WIDTH_IN, sum(1.3 + 0.42 * n for n in routes_per)),
                             height_ratios=routes_per)
    for ax, rec in zip(axes[:, 0], records):
        res = rec["result"]
        routes = [r["route"] for r in res["routes"] if r["status"] == "ok"]
        batches = sorted({row["batch"] for row in res["latency"]})
        lat = _latency_index(res)
        step = 0.3 / max(1, len(batches) - 1)     # a route's batch sizes within 0.3 of its tick, one row each
        for k, b in enumerate(batches):
            ys = [i + (k - (len(batches) - 1) / 2) * step for i in range(len(routes))]
            rows = [lat[(r, b)] for r in routes]
            ax.hlines(ys, [x["p10_ms"] for x in rows], [x["p90_ms"] for x in rows], color=f"C{k}", lw=2)
            ax.plot([x["median_ms"] for x in rows], ys, "o", color=f"C{k}", ms=5, label=f"batch {b}")
        ax.set_yticks(range(len(routes)), routes)
        ax.set_ylim(len(routes) - 0.5, -0.5)         # first route on top
        shown = [lat[(r, b)] for r in routes for b in batches]
        report.ms_log_x(ax, min(x["p10_ms"] for x in shown), max(x["p90_ms"] for x in shown))
        report.style(ax, title=f"{env.device_label(rec['provenance'])}, {res['model']}",
                     xlabel="latency (ms, median and p10-p90, log scale)")
        ax.grid(axis="x", which="major", alpha=0.3)
        report.legend_below(ax, ncols=len(batches), y=-0.22, fontsize=report.PHONE_FONT_PT)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    return fig


def route_rows() -> list[dict]:
    """The routes as a table: what each one is and where it can run."""
    return [{"route": r.name, "runtime": r.backend, "weights": r.dtype, "runs on": ", ".join(r.devices),
             "note": r.note} for r in ROUTES.values()]


def record_for(records: list[dict], device: str) -> dict | None:
    """The first record measured on `device` ('cpu' or 'cuda'), or None."""
    return next((r for r in records if r["result"]["device"] == device), None)


def placement_markdown(record: dict) -> str:
    """A week4/placement record as Markdown: the hardware, a warning callout naming any fallback, and where the ops
    ran: per op type when the CUDA provider was active, one line per provider when the whole session fell back."""
    import pandas as pd
    res = record["result"]
    head = (f"**{env.device_label(record['provenance'])}**, {res['route']}: asked for "
            f"{', '.join(res['requested'])}; active: {', '.join(res['active'])}.")
    verdict = ""
    if res["whole_session_fallback"]:
        verdict = ("Whole-session fallback: CUDA was asked for and every node ran on the CPU, with no error from "
                   f"ONNX Runtime. Likely cause: {res['likely_cause']}")
    elif res["per_node_fallback"]:
        verdict = (f"Per-node fallback: the CUDA provider is active, but these ops ran on the CPU: "
                   f"{', '.join(res['fell_back'])}. Every call copies their inputs to the host and back.")
    callout = f"::: {{.callout-warning}}\n{verdict}\n:::\n\n" if verdict else ""
    if res["whole_session_fallback"]:
        table = pd.DataFrame([{"provider": p, "nodes": sum(c.get(p, 0) for c in res["by_op"].values()),
                               "op types": ", ".join(op for op, c in res["by_op"].items() if p in c)}
                              for p in res["active"]])
    else:
        providers = [p.replace("ExecutionProvider", "") for p in res["active"]]
        table = pd.DataFrame(res["rows"]).fillna(0)
        table = table[["op", *[p for p in providers if p in table], "fell back"]]   # records store keys sorted
    return f"{head}\n\n{callout}{report.markdown_table(table)}"


def _best_int8(rec: dict, batch: int) -> tuple[str, dict] | None:
    """The fastest int8 route that ran on the record's device, with its latency row."""
    lat = {(r["route"], r["batch"]): r for r in rec["result"]["latency"]}
    ok = [r["route"] for r in rec["result"]["routes"] if r["status"] == "ok" and r["route"] in decide.INT8_ROUTES
          and (r["route"], batch) in lat]
    if not ok:
        return None
    best = min(ok, key=lambda name: lat[(name, batch)]["median_ms"])
    return best, lat[(best, batch)]


def decision(dep: decide.Deployment, records: list[dict]) -> dict:
    """One row: sizes, whether the size matters and why, the int8 speedup and whether it is signal, a verdict."""
    row = {"deployment": dep.name, "budget": dep.budget}
    rec = record_for(records, dep.device)
    if rec is None:
        return {**row, "verdict": f"not measured: no {dep.device} record yet (run this page on a {dep.device.upper()} "
                                  f"machine to fill this row)"}
    best = _best_int8(rec, dep.batch)
    if best is None:
        return {**row, "verdict": f"no int8 route ran on {dep.device}"}
    route, int8_lat = best
    ref_lat = next(r for r in rec["result"]["latency"] if r["route"] == REFERENCE and r["batch"] == dep.batch)
    fp32_mb = route_row(rec, REFERENCE)["size_mb"]
    int8_mb = route_row(rec, route)["size_mb"]

    if dep.bandwidth_mb_s:      # cold start: the download is on the request's critical path
        saved_s = (fp32_mb - int8_mb) / dep.bandwidth_mb_s
        matters = saved_s > ref_lat["median_ms"] / 1e3
        why = f"saves {saved_s:.2g} s of download per cold start vs {ref_lat['median_ms']:.3g} ms per request"
    else:
        budget_mb = decide.budget_of(dep, rec)
        share = fp32_mb / budget_mb if budget_mb else float("nan")
        matters = share > decide.SIZE_SHARE
        why = f"fp32 takes {100 * share:.2g}% of it"

    sp = ref_lat["median_ms"] / int8_lat["median_ms"]
    signal = bench.distinguishable(ref_lat, int8_lat)
    faster = "yes" if sp > 1 and signal else ("no, slower" if signal else latency.NOT_DISTINGUISHABLE)
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
            "speedup vs PyTorch fp32": sp if signal else latency.NOT_DISTINGUISHABLE, "faster?": faster,
            "verdict": verdict}


COLUMNS = ["deployment", "budget", "measured on", "batch", "fp32 MB", "int8 MB", "size matters?", "why",
           "int8 route", "speedup vs PyTorch fp32", "faster?", "verdict"]


# Twelve columns do not fit a page, and the page's point is that these are two questions: one table each.
SIZE_QUESTION = ["deployment", "budget", "fp32 MB", "int8 MB", "size matters?", "why"]


SPEED_QUESTION = ["deployment", "measured on", "batch", "int8 route", "speedup vs PyTorch fp32", "faster?", "verdict"]


def decision_table(records: list[dict]) -> list[dict]:
    """One row per deployment, every row with the same columns in COLUMNS order (None where not measured)."""
    return [{c: row.get(c) for c in COLUMNS} for row in (decision(dep, records) for dep in decide.DEPLOYMENTS)]


# ---------------------------------------------------------------- int8 against the best of the rest, and why

HALF_ROUTES = ("pytorch-fp16", "pytorch-bf16")     # the hardware's half precision: fp16 on a GPU, bf16 on a CPU


def fastest_not_int8(record: dict, batch: int) -> dict | None:
    """The fastest route that is not int8 at `batch` (by median), and those whose p10-p90 range overlaps it:
    {"route", "row", "tied"}. int8 is worth something only against this one, not against PyTorch fp32."""
    lat = _latency_index(record["result"])
    ok = [r["route"] for r in record["result"]["routes"]
          if r["status"] == "ok" and r["route"] not in decide.INT8_ROUTES and (r["route"], batch) in lat]
    if not ok:
        return None
    best = min(ok, key=lambda r: lat[(r, batch)]["median_ms"])
    tied = [r for r in ok if r != best and not bench.distinguishable(lat[(r, batch)], lat[(best, batch)])]
    return {"route": best, "row": lat[(best, batch)], "tied": tied}


def int8_verdict(record: dict, batch: int, int8: str = "onnx-int8-qint8") -> str:
    """One sentence: the int8 route against the fastest route that is not int8, named, at one batch size."""
    best = fastest_not_int8(record, batch)
    mine = _latency_index(record["result"]).get((int8, batch))
    if best is None or mine is None:
        return f"At batch {batch} this record has no int8 and non-int8 pair to compare."
    tied = ", ".join(f"`{t}`" for t in best["tied"])
    also = f" (as fast as {tied} within the noise)" if tied else ""
    return (f"At batch {batch} the fastest route that is not int8 is `{best['route']}`{also}; against it, "
            f"`{int8}`: {phrases.speed(best['row'], mine)}.")


def kernels_paragraph(record: dict, batch: int) -> str:
    """Why int8 wins or loses on this CPU, from the record: the CPU features it ran with (KERNEL_FLAGS) and the two
    int8 routes' measured latencies. ONNX Runtime's CPU kernels (MLAS) multiply the uint8 activations that
    DynamicQuantizeLinear makes by the weights: by int8 weights (qint8) with VNNI's one-instruction uint8 x int8 dot
    product, by uint8 weights (quint8) with a kernel that widens to 16 bits first on AVX-512 (VNNI has no uint8 x
    uint8 form); AMX, where MLAS uses it, takes both (onnxruntime/core/mlas/lib/platform.cpp, its dispatch)."""
    res = record["result"]
    flags = set(res.get("cpu_flags") or [])
    if res.get("device") != "cpu" or not res.get("cpu_flags"):
        return ""
    lat = _latency_index(res)
    have = ", ".join(f"`{f}`" for f in sorted(flags))
    parts = [f"This CPU reports {have}."]
    if "amx_int8" in flags:
        parts.append("With AMX, ONNX Runtime's int8 kernels (MLAS) multiply whole tiles of uint8 activations by the "
                     "weights, for uint8 and int8 weights alike.")
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        parts.append("ONNX Runtime's int8 kernels (MLAS) multiply the uint8 activations by int8 weights with VNNI, "
                     "one instruction per four products (the qint8 route). VNNI has no uint8 x uint8 form, so "
                     "uint8 weights (the quint8 route) take a kernel that widens to 16 bits first.")
    else:
        parts.append("Without VNNI or AMX, ONNX Runtime's int8 kernels multiply through 16-bit intermediates "
                     "(AVX2), which leaves int8 little arithmetic advantage over fp32.")
    if "pytorch-bf16" in {r["route"] for r in res["routes"] if r["status"] == "ok"}:
        parts.append("PyTorch's bf16 route runs oneDNN's bf16 kernels: "
                     + ("AMX tiles." if "amx_bf16" in flags else "AVX-512 bf16 dot products, two products per "
                                                                   "32-bit lane."))
    pairs = [(r, lat.get((r, batch))) for r in ("onnx-fp32", "onnx-int8-qint8", "onnx-int8-quint8")]
    if all(row for _, row in pairs):
        parts.append(f"Measured at batch {batch}: " + ", ".join(f"`{r}` {latency.ms(row)} ms" for r, row in pairs)
                     + ".")
    return " ".join(parts)


def headroom_rows(records: list[dict]) -> list[dict]:
    """Per hardware record: the fp32 model's bytes against the memory they compete for there (RAM on a CPU, the
    GPU's memory on a GPU, both from the record's provenance): 'nothing to compress against', measured."""
    rows = []
    for rec in records:
        prov, ref = rec["provenance"], route_row(rec, REFERENCE)
        on_gpu = rec["result"].get("device") == "cuda"
        gib = (prov.get("gpu") or {}).get("memory_gb") if on_gpu else prov.get("memory_gb")
        if not ref or ref.get("status") != "ok" or not gib:
            continue
        memory_mb = gib * 2**30 / 1e6        # lab.record.env reports GiB; the site's sizes are decimal MB
        rows.append({"hardware": env.device_label(prov), "model, fp32 (MB)": ref["size_mb"],
                     "competes for": f"{'GPU memory' if on_gpu else 'RAM'}: {memory_mb / 1e3:,.1f} GB",
                     "share of it": report.pct(ref["size_mb"] / memory_mb, 2)})
    return rows
