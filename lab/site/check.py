"""check_site: is every executed page's `_freeze` entry fresh?

Quarto (`execute: freeze: auto`) reuses a freeze entry only while its `hash` equals the md5 of
the page source; otherwise it would try to execute the page while publishing, which the
publishing machine cannot do. So a stale or missing entry, or a figure the frozen markdown
points to but the entry lacks, is a problem to fix before publishing (by re-rendering).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .freeze import FREEZE_DIR, entry_dir
from .qmd import parse_page


def _listed_pages(root: Path) -> set[str]:
    """Every `*.qmd` named anywhere in _quarto.yml (navbar, sidebar, render list...)."""
    config = root / "_quarto.yml"
    if not config.exists():
        return set()
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.endswith(".qmd") and (root / node).is_file():
            found.add(Path(node).as_posix())

    walk(yaml.safe_load(config.read_text(encoding="utf-8")))
    return found


def _frozen_pages(root: Path) -> set[str]:
    """Pages that have a freeze entry (and still exist)."""
    found = set()
    for html_json in (root / FREEZE_DIR).glob("**/execute-results/html.json"):
        rel = html_json.parent.parent.relative_to(root / FREEZE_DIR).with_suffix(".qmd")
        if (root / rel).is_file():
            found.add(rel.as_posix())
    return found


def site_pages(root: Path) -> list[str]:
    """index.qmd, course/**/*.qmd (not `_partials`), pages listed in _quarto.yml, frozen pages."""
    pages = {"index.qmd"} if (root / "index.qmd").is_file() else set()
    course = root / "course"
    if course.is_dir():
        pages |= {p.relative_to(root).as_posix() for p in course.rglob("*.qmd")
                  if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)}
    return sorted(pages | _listed_pages(root) | _frozen_pages(root))


def check_page(root: Path, rel: str) -> list[str]:
    try:
        page = parse_page(Path(rel), root)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return [f"{rel}: cannot read the page ({e})"]
    entry = entry_dir(root, page.rel)
    html_json = entry / "execute-results" / "html.json"
    if not page.needs_execution:
        return []  # the markdown engine renders it; Quarto freezes nothing
    shown = html_json.relative_to(root).as_posix()
    if not html_json.is_file():
        return [f"{rel}: no freeze entry ({shown} is missing; render the page)"]
    try:
        frozen = json.loads(html_json.read_text(encoding="utf-8"))
        frozen_hash = frozen["hash"]
        markdown = frozen["result"]["markdown"]
    except (ValueError, KeyError, TypeError) as e:
        return [f"{rel}: {shown} is not a Quarto freeze entry ({e}; re-render the page)"]
    problems = []
    if frozen_hash != page.hash:
        problems.append(f"{rel}: frozen hash {str(frozen_hash)[:8]}… != source md5 {page.hash[:8]}… "
                        "(re-render the page)")
    prefix = f"{page.stem}_files/figure-html/"
    for name in sorted(set(re.findall(re.escape(prefix) + r"([^)\s\"'}]+)", markdown))):
        if not (entry / "figure-html" / name).is_file():
            problems.append(f"{rel}: figure {prefix}{name} is referenced by the frozen markdown but "
                            f"missing from {(entry / 'figure-html').relative_to(root).as_posix()}/ "
                            "(re-render the page)")
    return problems


def check_site(root: Path) -> list[str]:
    """Problems with the site's freeze entries; empty when every executed page is fresh."""
    root = Path(root).resolve()
    problems: list[str] = []
    for rel in site_pages(root):
        problems += check_page(root, rel)
    return problems
