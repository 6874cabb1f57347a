"""Write a page's Quarto `_freeze/` entry, all or nothing.

Layout (as Quarto's project freezer): `_freeze/<page path without .qmd>/execute-results/html.json`
and `_freeze/<page path without .qmd>/figure-html/<figure files>`.

The whole entry is built in a temporary directory next to its final place and then swapped
into place (lab.record.scratch.replace_dir), so a failed or killed render never leaves a half-written
entry or none: at every instant the entry is the old one or the new one (where the OS cannot
swap two folders atomically, a kill between the two renames leaves the old entry aside, and
`recover`, run by the next render, puts it back). A failed render of a page leaves its previous
entry exactly as it was. The entry belongs to this html render as a whole: a re-render replaces
it, dropping figures that are no longer produced.

Beyond Quarto's two keys, html.json may carry `"lab": {"profiles": [...], "records": [...]}`: the
lab profiles the page's code used (lab.config.used_profiles), and the measurement records it
showed (lab.record.records_used), each as `{"name": "week4/routes", "hardware": "cpu-intel-...",
"sha256": <of the record file>}`, plus the record's `noisy` note or `synthetic: true`. A record is
named relative to the site's records folder (lab.record.paths.site_records_dir: course/measurements in
the checkout, DIR/course/measurements for `--root DIR`), at `<name>/<hardware>.json`, so the
entry holds no path of the machine that executed it. Quarto reads only `hash` and `result`, and
drops the key when it re-executes a page itself. `python -m lab check` fails on a page executed
on `smoke`, and on one whose records changed, went missing, were noisy or synthetic.
With them, `"course"`: what the student notebook quotes as the course's (its inline values, its claims'
numbers and the machine; lab.site.notebooks). A page that used no lab profile and showed no record gets no
`lab` key: its html.json is Quarto's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from lab.record import scratch

FREEZE_DIR = "_freeze"

# What Quarto 1.10 puts in `include-in-header` when a page has text/html or javascript output
# (require.js and jQuery for "javascript widgets" such as pandas' html tables), as in the
# reference freeze entry.
JS_WIDGET_HEADER = (
    '<script src="https://cdn.jsdelivr.net/npm/requirejs@2.3.6/require.min.js" '
    'integrity="sha384-c9c+LnTbwQ3aujuU7ULEPVvgLs+Fn6fJUvIGTsuu1ZcCf11fiEubah0ttpca4ntM '
    'sha384-6V1/AdqZRWk1KAlWbKBlGhN7VG4iE/yAZcO6NZPMF8od0vukrvr0tg4qY6NSrItx" '
    'crossorigin="anonymous"></script>\n'
    '<script src="https://cdn.jsdelivr.net/npm/jquery@3.5.1/dist/jquery.min.js" '
    'integrity="sha384-ZvpUoO/+PpLXR1lu4jmpXWu80pZlYUAfxl5NsBMWOEPSjUn/6Z/hRTt8+pR6L4N2" '
    'crossorigin="anonymous" data-relocate-top="true"></script>\n'
    "<script type=\"application/javascript\">define('jquery', [],function() {return window.jQuery;})</script>\n"
)


def entry_dir(freeze_root: Path, rel: str) -> Path:
    """`_freeze/week/outputs` for page `week/outputs.qmd`."""
    return freeze_root / FREEZE_DIR / Path(rel).with_suffix("")


def result_json(page_hash: str, markdown: str, stem: str, needs_js: bool, profiles: list[str] | None = None,
                records: list[dict] | None = None, course: dict | None = None) -> str:
    """The html.json text, byte for byte as Quarto writes it (JSON.stringify(x, null, 2):
    two-space indent, non-ASCII kept, no trailing newline), plus the `lab` key when the page
    used lab profiles or showed records, with the `course` values for its student notebook (lab.site.notebooks)."""
    result = {
        "hash": page_hash,
        "result": {
            "engine": "jupyter",
            "markdown": markdown,
            # Quarto always lists the page's `<stem>_files` dir, figures or not.
            "supporting": [f"{stem}_files"],
            "filters": [],
            "includes": {"include-in-header": [JS_WIDGET_HEADER]} if needs_js else {},
        },
    }
    lab = {"profiles": profiles or [], "records": records or []}
    if any(lab.values()):     # a page that does not use lab gets Quarto's html.json, byte for byte
        result["lab"] = {key: value for key, value in {**lab, "course": course}.items() if value}
    return json.dumps(result, indent=2, ensure_ascii=False)


def write_entry(target: Path, html_json: str, figures: dict[str, bytes]) -> Path:
    """Replace the freeze entry directory `target` with a new one; returns the html.json path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name that says which process builds it (so no other render's cleanup takes it), made
    # with plain mkdir (not mkdtemp, which makes 0700 dirs) so the entry gets the usual permissions.
    tmp = target.parent / scratch.owned_name(target.name)
    tmp.mkdir()
    try:
        (tmp / "execute-results").mkdir()
        (tmp / "execute-results" / "html.json").write_text(html_json, encoding="utf-8", newline="")
        if figures:
            (tmp / "figure-html").mkdir()
            for name, content in figures.items():
                (tmp / "figure-html" / name).write_bytes(content)
        scratch.replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "execute-results" / "html.json"


# Names the writer of lab 0.1.0 used for its temporary and set-aside entries ('.<page>.new-1a2b3c4d').
_OLD_STYLE = re.compile(r"^\.(?P<page>.+)\.(?P<kind>new|old)-[0-9a-f]{8}$")


def leftovers(freeze_root: Path) -> list[Path]:
    """Hidden folders in _freeze/: what an interrupted write left (Quarto writes no hidden names there)."""
    base = Path(freeze_root) / FREEZE_DIR
    return sorted(p for p in base.rglob(".*") if p.is_dir()) if base.is_dir() else []


def recover(freeze_root: Path) -> list[Path]:
    """Clear what killed renders left in _freeze/: an entry set aside goes back where none is (else it is
    deleted); a dead writer's half-built or replaced entry is deleted. Call it holding the freeze root's lock."""
    base = Path(freeze_root) / FREEZE_DIR
    acted = []
    entries = [p for p in base.rglob("*") if p.is_dir()
               and not any(part.startswith(".") for part in p.relative_to(base).parts)]
    for folder in [base, *entries]:
        acted += scratch.restore_aside(folder)
        for p in folder.glob(".*-*"):
            m = _OLD_STYLE.match(p.name)
            if m and p.is_dir():
                place = folder / m["page"]
                if m["kind"] == "old" and not place.exists():
                    os.rename(p, place)
                else:
                    shutil.rmtree(p, ignore_errors=True)
                acted.append(p)
    return acted
