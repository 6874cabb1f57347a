"""render_pages: parse, execute and freeze pages, one fresh kernel per page.

This replaces `quarto render` for the execution step only: Quarto (with `execute: freeze:
auto`) later finds entries whose hash matches the source and publishes them without running
anything.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import yaml

from lab import lock

from .execute import PageError, execute_page
from .freeze import FREEZE_DIR, entry_dir, recover, result_json, write_entry
from .markdown import page_markdown
from .notebooks import course_values
from .qmd import Page, parse_page


# Execute options Quarto also accepts at the top level of the YAML, next to `execute:`.
_TOP_LEVEL_EXECUTE = ("eval", "echo", "output", "warning", "error", "include")


def execute_options(metadata: dict) -> dict:
    """Execute options of one YAML document (top-level keys, then the `execute:` group)."""
    if not isinstance(metadata, dict):
        return {}
    options = {k: metadata[k] for k in _TOP_LEVEL_EXECUTE if k in metadata}
    group = metadata.get("execute")
    return {**options, **(group if isinstance(group, dict) else {})}


def project_execute_options(root: Path) -> dict:
    """The execute options (echo, warning, ...) of the project's _quarto.yml."""
    config = root / "_quarto.yml"
    if not config.exists():
        return {}
    return execute_options(yaml.safe_load(config.read_text(encoding="utf-8")) or {})


def page_execute_options(page: Page, project: dict) -> dict:
    """The page's execute options: its front matter over the project's."""
    return {**project, **execute_options(page.front_matter)}


def cell_ids(page: Page) -> list[str]:
    """Stable cell ids (Quarto uses random ones): md5 of page path + cell index, 8 hex."""
    return [hashlib.md5(f"{page.rel}:{i}".encode()).hexdigest()[:8] for i in range(len(page.cells))]


def render_page(page: Page, freeze_root: Path, project_execute: dict, env: dict | None,
                timeout: int) -> Path:
    execute = page_execute_options(page, project_execute)
    if "title" not in page.front_matter:
        # Quarto would move the page's first heading into a `title:`; we do not.
        print(f"{page.rel}: warning: no `title:` in the front matter", file=sys.stderr)
    executed = execute_page(page, execute, env=env, timeout=timeout)
    md = page_markdown(executed.cells, cell_ids(page), page.stem, execute)
    html_json = result_json(page.hash, md.markdown, page.stem, md.needs_js, executed.profiles,
                            course_values(executed))
    if "smoke" in executed.profiles:
        print(f"{page.rel}: warning: executed on the smoke profile (a tiny random model on a few dozen examples); "
              "`python -m lab check` fails on this entry until the page is rendered on cpu or gpu", file=sys.stderr)
    return write_entry(entry_dir(freeze_root, page.rel), html_json, md.figures)


def render_pages(pages: list[Path], root: Path, freeze_root: Path | None = None,
                 env: dict | None = None, timeout: int = 3600) -> list[Path]:
    """Execute each page and write its `_freeze` entry; returns the html.json paths written.

    Pages are paths relative to `root` (or absolute inside it). Each runs in its own kernel
    with its directory as cwd; `env` adds environment variables for the kernel. Pages that
    Quarto would not execute (no python cell, no `jupyter:` key) are skipped, as Quarto writes
    no freeze entry for them. A failing page raises PageError and keeps its previous entry;
    pages rendered before it keep their new entries.

    One render at a time per freeze root: a second one fails at once with lock.Busy, naming the
    first. Before rendering, what a killed render left in _freeze/ is put back or removed."""
    root = Path(root).resolve()
    freeze_root = Path(freeze_root).resolve() if freeze_root else root
    with lock.hold(freeze_root / FREEZE_DIR, "rendering", wait=False):
        for p in recover(freeze_root):
            print(f"cleared {p.relative_to(freeze_root)}, left by an interrupted render", file=sys.stderr)
        return _render(pages, root, freeze_root, env, timeout)


def _render(pages: list[Path], root: Path, freeze_root: Path, env: dict | None, timeout: int) -> list[Path]:
    project_execute = project_execute_options(root)
    written: list[Path] = []
    for number, path in enumerate(pages, 1):
        try:
            page = parse_page(Path(path), root)
        except ValueError as e:
            raise PageError(str(e)) from None
        if not page.needs_execution:
            print(f"{page.rel}: no python cells, nothing to execute (Quarto freezes nothing)")
            continue
        # One line as each page starts (a first run trains for minutes: say what is running), one when it ends.
        print(f"[{number}/{len(pages)}] {page.rel}: executing {len(page.code_cells)} cells", flush=True)
        started = time.monotonic()
        out = render_page(page, freeze_root, project_execute, env, timeout)
        written.append(out)
        print(f"[{number}/{len(pages)}] {page.rel}: done in {time.monotonic() - started:.1f} s "
              f"-> {out.relative_to(freeze_root)}", flush=True)
    return written
