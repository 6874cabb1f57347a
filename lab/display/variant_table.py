"""The variants week 6 compares, as rows (lab.capstone.variants), for a student's own cell or exercise:

    from lab.display import variant_table
    rows = variant_table.rows(profile)         # [{"variant", "accuracy", "size_mb", "latency": {batch: ...}}, ...]
    capstone.pareto(rows, 1)

The rows are built from the same records week 6's page reads: week 4's routes, week 5's students, week 6's own
variants and the latency record, all measured on the CPU as the page's table is. After the week 6 notebook (or
page) has run, each is reused in seconds; in a fresh session without them, this measures what is missing first,
as the page does (weeks 1, 2, 4 and 5's models: the page's "How long" gives the cost).

It sits in lab.display because it asks the recipes for their records (the library layer may not import them); no
recipe imports it, so editing it stales no record.
"""
from __future__ import annotations

from lab import capstone, train
from lab.record.store import measured


def records(profile) -> dict:
    """The four records behind week 6's table, as the page asks for them (the same names, functions and config,
    so the page's stored records are the ones reused)."""
    from lab.recipes import latency, week4, week5, week6
    week4_rec = measured("week4/routes", week4.routes_record, profile=profile, device="cpu", run_on="cpu")
    week5_rec = measured("week5/distill", week5.distill_record, profile=profile, device=train.default_device())
    best = capstone.best_student(week5_rec["result"])      # on validation accuracy, as the pages pick it
    extra = measured("week6/variants", week6.variants_record, profile=profile, device="cpu",
                     temperature=best.temperature, alpha=best.alpha)
    latency_rec = measured("latency/variants", latency.variants_record, profile=profile, device="cpu", run_on="cpu")
    return {"week4": week4_rec, "week5": week5_rec, "week6": extra, "latency": latency_rec}


def rows(profile) -> list[dict]:
    """Every variant measured on this machine's CPU: accuracy, size and latency per batch size."""
    recs = records(profile)
    return capstone.variants(recs["week4"], recs["week6"], recs["latency"])
