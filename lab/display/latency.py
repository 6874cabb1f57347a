"""Reading and saying the one latency record (lab.recipes.latency): every latency on pages 4, 5 and 6 comes from it.

    lat = latency.lookup(rec)        # "full/onnx-int8-qint8" -> {batch: row (median_ms, p10_ms, p90_ms ...)}
    latency.ms(row)                  # '12.3 (11.9–13.0)'
    latency.as_fast(ref, row)        # '1.7x as fast', or 'not distinguishable here' (lab.display.phrases.speed)
"""
from __future__ import annotations

from lab import bench, variants
from lab.display import phrases
from lab.record import store


NOT_DISTINGUISHABLE = phrases.TIE


def as_fast(ref: dict, mine: dict, digits: int = 2) -> str:
    """'1.7x as fast' (ref's median over mine's) when the two rows' ranges are apart, else NOT_DISTINGUISHABLE:
    a ratio inside the noise is not a speedup, whatever its value. The words are lab.display.phrases.speed's, the
    one place every speed comparison is phrased (at several batch sizes: phrases.speed_at)."""
    return phrases.speed(ref, mine, digits=digits)


def ms(row: dict, interval: bool = True) -> str:
    """'12.3 (11.9–13.0)': a latency row's median with its p10–p90 range, in ms, to 3 significant digits. Every
    page writes latencies through this, so one measured value reads the same wherever it appears."""
    text = f"{row['median_ms']:.3g}"
    return f"{text} ({row['p10_ms']:.3g}–{row['p90_ms']:.3g})" if interval else text


def lookup(rec: dict) -> dict[str, dict[int, dict]]:
    """variant -> {batch: latency row} of a latency record."""
    return bench.by_variant(rec["result"]["rows"])


def route_rows(rec: dict, model: str = variants.FULL) -> list[dict]:
    """One model's rows in the shape week 4's tables read (a "route" per row)."""
    return [r for r in rec["result"]["rows"] if r["model"] == model]


def _hardware(rec: dict) -> str:
    return store.hardware_key(rec["result"]["device"], rec["provenance"])


def for_hardware(records: list[dict], other: dict) -> dict | None:
    """The latency record measured on the same hardware as `other` (a record of another measurement), or None."""
    return next((r for r in records if _hardware(r) == _hardware(other)), None)


def with_latency(route_records: list[dict], latency_records: list[dict]) -> list[dict]:
    """Week 4's route records, each with "latency" (its full model's rows) taken from the latency record of the
    same hardware; a hardware without one keeps no latency rows."""
    out = []
    for rec in route_records:
        lat = for_hardware(latency_records, rec)
        out.append({**rec, "result": {**rec["result"], "latency": route_rows(lat) if lat else []}})
    return out
