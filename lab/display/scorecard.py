"""How a scorecard (lab.recipes.verify) is shown: the terminal's Markdown table, and the page's tables across candidates."""
from __future__ import annotations

from lab import models
from lab.record import env
from lab.display.report import markdown_table
from lab.recipes.verify import CHECKS

MARK = {"pass": "pass", "fail": "FAIL", "warn": "warn"}

# Each check as a table header or a findings row names it: what it checks, in the words of the page's five
# requirements, short enough for a column on a phone. The keys are the check names `--only` takes.
TITLES = {"licence": "open licence", "loads": "loads as classifier", "budget": "fits the budget",
          "checkpoint": "checkpoint reload", "lora": "LoRA reload", "int8": "int8", "onnx": "ONNX export",
          "determinism": "same-seed runs"}


def title(name: str) -> str:
    """A check's readable name (TITLES), or its key for a check this table does not know yet."""
    return TITLES.get(name, name)


def check_rows(card: dict) -> list[dict]:
    """One row per check: its status, its one-line reason, its time."""
    return [{"check": c["name"], "result": MARK[c["status"]], "seconds": c["seconds"], "why": c["reason"]}
            for c in card["checks"]]


def markdown(card: dict) -> str:
    """The scorecard as the terminal shows it at the end of `python -m lab verify`."""
    head = f"Scorecard of {card['model']} ({card['kind']}, {card['weights']} weights, profile {card['profile']})"
    return head + "\n\n" + markdown_table(check_rows(card), floatfmt=".1f")


def label(card: dict) -> str:
    """The candidate as the page names it: a stand-in says so, since its accuracy means nothing."""
    c = models.REGISTRY.get(card["model"])
    if c is not None and c.weights == "random":
        return f"{card['model']} (random-init {c.arch} stand-in)"
    return card["model"]


def candidates_rows(records: list[dict]) -> list[dict]:
    """One row per candidate record, one column per check (pass / FAIL / warn; blank if not run)."""
    rows = []
    for rec in records:
        card = rec["result"]
        status = {c["name"]: MARK[c["status"]] for c in card["checks"]}
        rows.append({"candidate": label(card), **{title(name): status.get(name, "") for name in CHECKS},
                     "measured on": env.device_label(rec["provenance"]), "wall time (s)": round(rec["wall_s"])})
    return rows


def findings_rows(records: list[dict], statuses=("fail", "warn")) -> list[dict]:
    """What the checks caught: every failing or warning check of every candidate, with its reason."""
    return [{"candidate": label(rec["result"]), "check": title(c["name"]), "result": MARK[c["status"]],
             "why": c["reason"]}
            for rec in records for c in rec["result"]["checks"] if c["status"] in statuses]


def check(card: dict, name: str) -> dict | None:
    """The named check of a scorecard, or None when it was not run."""
    return next((c for c in card["checks"] if c["name"] == name), None)
