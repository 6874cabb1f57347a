"""Write a page's Quarto `_freeze/` entry, all or nothing.

Layout (as Quarto's project freezer): `_freeze/<page path without .qmd>/execute-results/html.json`
and `_freeze/<page path without .qmd>/figure-html/<figure files>`.

The whole entry is built in a temporary directory next to its final place and then renamed
into place, so a failed or interrupted render never leaves a half-written entry (and a failed
render of a page leaves its previous entry exactly as it was). The entry belongs to this
html render as a whole: a re-render replaces it, dropping figures that are no longer produced.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

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


def result_json(page_hash: str, markdown: str, stem: str, needs_js: bool) -> str:
    """The html.json text, byte for byte as Quarto writes it (JSON.stringify(x, null, 2):
    two-space indent, non-ASCII kept, no trailing newline)."""
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
    return json.dumps(result, indent=2, ensure_ascii=False)


def write_entry(target: Path, html_json: str, figures: dict[str, bytes]) -> Path:
    """Replace the freeze entry directory `target` with a new one; returns the html.json path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Plain mkdir (not mkdtemp, which makes 0700 dirs) so the entry gets the usual permissions.
    tmp = target.parent / f".{target.name}.new-{secrets.token_hex(4)}"
    tmp.mkdir()
    old = None
    try:
        (tmp / "execute-results").mkdir()
        (tmp / "execute-results" / "html.json").write_text(html_json, encoding="utf-8", newline="")
        if figures:
            (tmp / "figure-html").mkdir()
            for name, content in figures.items():
                (tmp / "figure-html" / name).write_bytes(content)
        if target.exists():
            old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
            os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            if old is not None:  # put the previous entry back
                os.rename(old, target)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target / "execute-results" / "html.json"
