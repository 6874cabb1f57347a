"""render_pages: parse, execute and freeze pages, one fresh kernel per page.

This replaces `quarto render` for the execution step only: Quarto (with `execute: freeze:
auto`) later finds entries whose hash matches the source and publishes them without running
anything.

render_pages stops at the first page that fails (`python -m lab render`); render_every_page
goes on to the next page and reports every failure at the end (`python -m lab course`: one
broken page must not keep the other seven stale). Either way a failed page keeps its previous
entry. Ctrl-C at any instant stops both with Interrupted, naming where (execute.ctrl_c): no page starts after it,
and the page it stopped keeps its previous entry (a Ctrl-C that lands once the new entry is written stops the run
before the next page).

The kernels read and write the site's records folder (lab.record.paths.site_records_dir): for a site
outside this checkout they are told it through $LAB_RECORDS, so `lab check --root DIR` finds the
records that DIR's freeze lists.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lab.record import lock, paths

from .execute import Interrupted, PageError, ctrl_c, execute_page
from .freeze import FREEZE_DIR, entry_dir, recover, result_json, write_entry
from .markdown import page_markdown
from .notebooks import course_values
from .qmd import Page, page_rel, parse_page


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
    with ctrl_c() as ctrl:
        executed = execute_page(page, execute, env=env, timeout=timeout)
        md = page_markdown(executed.cells, cell_ids(page), page.stem, execute)
        html_json = result_json(page.hash, md.markdown, page.stem, md.needs_js, executed.profiles, executed.records,
                                course_values(executed))
        if ctrl.pressed():
            raise Interrupted(f"{page.rel}: Ctrl-C stopped the page after its last cell, before its _freeze entry "
                              "was written")
        if "smoke" in executed.profiles:
            print(f"{page.rel}: warning: executed on the smoke profile (a tiny random model on a few dozen examples); "
                  "`python -m lab check` fails on this entry until the page is rendered on cpu or gpu",
                  file=sys.stderr)
        return write_entry(entry_dir(freeze_root, page.rel), html_json, md.figures)


@dataclass
class Rendered:
    """What render_every_page did: the html.json paths written, and each failed page with its reason."""
    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)     # page (relative to the root) -> one-line reason


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
    return _locked(pages, root, freeze_root, env, timeout, keep_going=False).written


def render_every_page(pages: list[Path], root: Path, freeze_root: Path | None = None,
                      env: dict | None = None, timeout: int = 3600) -> Rendered:
    """As render_pages, but a failing page does not stop the others: its reason is collected in `failed`.
    Ctrl-C still stops the whole run (Interrupted)."""
    return _locked(pages, root, freeze_root, env, timeout, keep_going=True)


def kernel_env(root: Path, env: dict | None) -> dict:
    """`env` plus, for a site outside this checkout, $LAB_RECORDS = its own records folder (unless set)."""
    env = dict(env or {})
    if "LAB_RECORDS" not in env and not os.environ.get("LAB_RECORDS") and root != paths.checkout():
        env["LAB_RECORDS"] = str(paths.site_records_dir(root))
    return env


def _locked(pages, root, freeze_root, env, timeout, keep_going) -> Rendered:
    root = Path(root).resolve()
    freeze_root = Path(freeze_root).resolve() if freeze_root else root
    with ctrl_c(), lock.hold(freeze_root / FREEZE_DIR, "rendering", wait=False):
        for p in recover(freeze_root):
            print(f"cleared {p.relative_to(freeze_root)}, left by an interrupted render", file=sys.stderr)
        return _render(pages, root, freeze_root, kernel_env(root, env), timeout, keep_going)


def _render(pages: list[Path], root: Path, freeze_root: Path, env: dict | None, timeout: int,
            keep_going: bool) -> Rendered:
    project_execute = project_execute_options(root)
    done = Rendered()
    with ctrl_c() as ctrl:      # the first Ctrl-C is noted here and stops the run at the next check
        last = None             # the page before this one
        for number, path in enumerate(pages, 1):
            rel = page_rel(Path(path), root)
            _stop_if_pressed(ctrl, last, rel)
            last = rel
            try:
                out = _render_one(number, path, pages, root, freeze_root, project_execute, env, timeout)
            except Interrupted:
                raise
            except PageError as e:
                if ctrl.pressed():
                    raise Interrupted(f"{rel}: Ctrl-C stopped the page") from None
                if not keep_going:
                    raise
                _failed(done, e, rel, number, len(pages))
                continue
            if out is not None:
                done.written.append(out)
        _stop_if_pressed(ctrl, last, None)
    return done


def _stop_if_pressed(ctrl, last: str | None, following: str | None) -> None:
    """Interrupted when Ctrl-C was pressed: between page `last` (None: before the first) and `following` (None:
    after the last)."""
    if not ctrl.pressed():
        return
    if following is None:
        raise Interrupted(f"Ctrl-C stopped the run after its last page{f', {last}' if last else ''}", kept=False)
    if last is None:
        raise Interrupted(f"{following}: Ctrl-C stopped the run before this, its first page, started")
    raise Interrupted(f"{following}: Ctrl-C stopped the run before this page started (the pages before it, up to "
                      f"{last}, are done)")


def _failed(done: Rendered, e: PageError, rel: str, number: int, total: int) -> None:
    """Note the failed page in `done` and say so."""
    reason = str(e).splitlines()[0].removeprefix(f"{rel}: ")
    done.failed[rel] = reason
    print(f"[{number}/{total}] {rel}: FAILED ({reason}); its previous _freeze entry is kept, "
          "going on with the next page", file=sys.stderr, flush=True)


def _render_one(number, path, pages, root, freeze_root, project_execute, env, timeout) -> Path | None:
    try:
        page = parse_page(Path(path), root)
    except ValueError as e:
        raise PageError(str(e)) from None
    if not page.needs_execution:
        print(f"{page.rel}: no python cells, nothing to execute (Quarto freezes nothing)")
        return None
    # One line as each page starts (a first run trains for minutes: say what is running), one when it ends.
    print(f"[{number}/{len(pages)}] {page.rel}: executing {len(page.code_cells)} cells", flush=True)
    started = time.monotonic()
    out = render_page(page, freeze_root, project_execute, env, timeout)
    print(f"[{number}/{len(pages)}] {page.rel}: done in {time.monotonic() - started:.1f} s "
          f"-> {out.relative_to(freeze_root)}", flush=True)
    return out
