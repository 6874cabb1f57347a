"""A student's own numbers next to the course's: what a student notebook shows instead of stopping.

The site render (lab.site) records, in the page's kernel, every claim a page checks with its numbers and the
machine they came from (`course_record`), and writes that record into the page's freeze entry. The notebook
writer (lab.site.notebooks) puts it into the notebook's setup cell (`use_course`), because a student has no
checkout to read it from. When a claim does not hold in the student's run, lab.display.claims calls `show_claim`: the
course's numbers and the student's side by side, and what a difference may mean. One cell at the end of a
section calls `show_values` the same way for the values its text quotes.
"""
from __future__ import annotations

import functools
import os

# Filled by the notebook's setup cell: {"hardware": "CPU: ...", "claims": {claim: {name: shown value}}}.
_course: dict = {"hardware": None, "claims": {}}
# Filled while a page runs in the site render: {claim: {name: shown value}}, every claim checked, held or not.
_checked: dict[str, dict[str, str]] = {}

MEANING = ("A different number is a finding, not an error: another GPU or CPU, another torch, transformers or "
           "onnxruntime version, a machine busy with other work, or the smoke profile's tiny model all move "
           "measurements. Note both columns in your report and go on; the notebook continues.")


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rounded(v) for v in value)
    return value


def shown(value, width: int = 80) -> str:
    """A number as the comparison prints it: 4 significant digits for floats (also inside dicts and lists), a
    short repr for the rest."""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else repr(_rounded(value))
    return text if len(text) <= width else text[:width - 3] + "..."


@functools.lru_cache(maxsize=1)
def machine() -> str:
    """'GPU: Tesla T4 (x2)' when torch sees a CUDA GPU, else 'CPU: <model> (<n> cores)' (lab.record.env's label)."""
    from lab.record import env
    gpu = env.gpu()
    if gpu:
        return f"GPU: {gpu['name']}" + (f" (x{gpu['count']})" if gpu.get("count", 1) > 1 else "")
    return env.device_label({"device": "cpu", "cpu": env.cpu_name(), "cpu_count": os.cpu_count()})


def remember(claim: str, numbers: dict) -> None:
    """Called by lab.display.claims in the site render, for every claim checked."""
    _checked[claim] = {name: shown(value) for name, value in numbers.items()}


def course_record() -> dict:
    """What the site render collects from the kernel after the page's last cell (lab.site.execute)."""
    return {"hardware": machine(), **({"claims": dict(_checked)} if _checked else {})}


def use_course(record: dict) -> None:
    """The notebook's setup cell hands over the course's record of this page (course_record, from the freeze)."""
    _course["hardware"] = record.get("hardware")
    _course["claims"] = dict(record.get("claims") or {})


def _table(rows: list[tuple[str, str, str]]) -> str:
    header = ("", "the course measured", "you measured")
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def show_claim(claim: str, numbers: dict) -> None:
    """Print a claim that does not hold in this run: the course's numbers and the student's, and what that may mean."""
    course = _course["claims"].get(claim)
    names = list(dict.fromkeys([*numbers, *(course or {})]))
    rows = [(name, (course or {}).get(name, "-"), shown(numbers[name]) if name in numbers else "-") for name in names]
    rows.append(("machine", _course["hardware"] or "not in this notebook", machine()))
    print(f"The page says {claim!r}; in your run it does not hold.")
    if course is None:
        print("(The course's numbers for this claim are not in this notebook: its text depends on your run, "
              "or the notebook was generated without the course's render.)")
    print(_table(rows))
    print(MEANING)
    print()


def show_values(section: str, values: list[tuple[str, str | None, object]]) -> None:
    """Print the values that a section's text quotes, once at the section's end: (what it is, in the text's words;
    the course's value as written there; this run's value)."""
    rows = [(what, course if course is not None else "-", shown(yours)) for what, course, yours in values]
    rows.append(("machine", _course["hardware"] or "not in this notebook", machine()))
    where = f"under {section!r}" if section else "at the top"
    print(f"The text {where} quotes the course's values (… in the text); yours from this run:")
    print(_table(rows))
