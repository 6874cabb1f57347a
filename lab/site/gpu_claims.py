"""A sentence about a GPU result is published only with a GPU record behind it.

The course's numbers come from whatever machine rendered the page, usually a CPU. A sentence such as "on the
GPU, int8 ran 12x slower" states a measurement; unless the page showed a `cuda-*` record (its freeze lists the
records it showed, lab.record.records_used, and `lab check` holds each to its file), nothing on the site backs it.
`lab check` runs `problems(root)` over every frozen page and names each such sentence.

What counts as a GPU-result sentence (a heuristic, deliberately narrow, so that it does not cry wolf):
- it names a GPU (`GPU`, `T4`, `CUDA`, an NVIDIA part such as `H100`), and
- it states a speed outcome (`faster`, `slower`, `12x`, `0.3×`, `ms`, `times as fast`), and
- it asserts rather than asks or supposes: questions are not results, nor is an outcome in a clause with
  would/could/might/may/if/will/can/until/once/whether.

Not read: code blocks and tables (generated from records: a GPU row exists only when its record does), and the
labelled origin story, a callout titled "Where this course comes from", which tells what happened in an earlier
run of the course, visibly as such, with an exercise by which a student measures it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ORIGIN_TITLE = "Where this course comes from"

_GPU = re.compile(r"\b(GPUs?|T4|CUDA|[AHL]\d{2,3}|V100|RTX)\b")
# speed outcomes: a GPU changes how fast a model runs, not its size, so "4 times smaller" is no GPU result
_OUTCOME = re.compile(r"\b(faster|slower|quicker)\b|\d(\.\d+)?[x×](?!\w)|\d\s*ms\b|\btimes as (fast|slow)\b",
                      re.IGNORECASE)
_SUPPOSED = re.compile(r"\b(would|could|might|may|if|will|can|until|once|whether)\b", re.IGNORECASE)
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_DIV = re.compile(r"^(:{3,})\s*(\{.*\}|[\w-]+)?\s*$")


def prose(markdown: str) -> str:
    """The page's prose as a reader sees it, without code blocks, tables and the labelled origin callout."""
    kept: list[str] = []
    stack: list[bool] = []          # per open div: is it the origin callout?
    fence = None
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if fence:
            fence = None if line.strip() == fence else fence
            continue
        m = _FENCE.match(line.strip())
        if m:
            fence = m.group(1)
            continue
        div = _DIV.match(line.strip())
        if div and div.group(2):                        # an opening fence: ::: {.callout-note ...}
            title = " ".join([line] + [t for t in lines[i + 1:i + 3] if t.strip()][:1])
            stack.append("callout" in line and ORIGIN_TITLE.lower() in title.lower())
            continue
        if div:                                         # a closing fence
            if stack:
                stack.pop()
            continue
        if any(stack) or line.lstrip().startswith("|"):
            continue
        kept.append(line)
    return "\n".join(kept)


def sentences(text: str) -> list[str]:
    """Sentences, never running across a paragraph, heading or list item."""
    found = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:#|[-*+] |\d+\. |> ))", text):
        flat = re.sub(r"\s+", " ", block)
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"*`(])", flat) if s.strip()]
    return found


def gpu_result_sentences(markdown: str) -> list[str]:
    """The sentences of a frozen page that state a GPU result (see the module docstring)."""
    def asserted(clause: str) -> bool:
        return bool(_OUTCOME.search(clause)) and not _SUPPOSED.search(clause)
    # a modal qualifies its own clause only: "week 4 found int8 slower, so the rule would pick another" asserts
    return [s for s in sentences(prose(markdown))
            if _GPU.search(s) and not s.endswith("?") and any(asserted(c) for c in re.split(r"[,;:—–]", s))]


def backed(records: list[dict]) -> bool:
    """Whether a page's freeze lists a `cuda-*` record among those it showed (lab.record.records_used: the freeze's
    `lab.records`, whose hashes `lab check` holds to the files)."""
    return any(str(r.get("hardware", "")).startswith("cuda-") for r in records)


def page_problems(rel: str, markdown: str, records: list[dict]) -> list[str]:
    """One problem per GPU-result sentence of a page whose freeze lists no GPU record."""
    if backed(records):
        return []
    return [f"{rel}: states a GPU result with no cuda-* record behind it: {s[:160]!r}. Measure it on a GPU "
            f"(render the page there), reword it as what a student will measure, or tell it inside a callout "
            f"titled {ORIGIN_TITLE!r}" for s in gpu_result_sentences(markdown)]


def problems(root: Path, pages: list[str]) -> list[str]:
    """page_problems of every frozen page among `pages` (site-relative .qmd paths)."""
    from .freeze import entry_dir
    found = []
    for rel in pages:
        html_json = entry_dir(Path(root), rel) / "execute-results" / "html.json"
        try:
            entry = json.loads(html_json.read_text(encoding="utf-8"))
            markdown = entry["result"]["markdown"]
        except (OSError, ValueError, KeyError, TypeError):
            continue                # missing or unreadable: check_site reports it
        records = (entry.get("lab") or {}).get("records") or []
        found += page_problems(rel, markdown, records)
    return found
