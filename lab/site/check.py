"""check_site: is every executed page's `_freeze` entry fresh, and fit to publish?

Quarto (`execute: freeze: auto`) reuses a freeze entry only while its `hash` equals the md5 of
the page source; otherwise it would try to execute the page while publishing, which the
publishing machine cannot do. So a stale or missing entry, or a figure the frozen markdown
points to but the entry lacks, is a problem to fix before publishing (by re-rendering).

So is an entry executed on the `smoke` profile (its numbers come from a tiny random model; the
freeze writer records the profiles a page used, see freeze.py), a folder left in _freeze/ by an
interrupted render, and a root with no pages at all (a wrong --root must not pass as "all fresh").

Freshness follows records: a freeze entry lists the measurement records its page showed, each with the sha256 of
the record file (freeze.py). A record that changed or went missing after the page was frozen makes the page stale
(Quarto cannot see this: its hash is the page source's). A page built on a record marked noisy (measured on a busy
machine) or synthetic (a test's fake GPU record) is refused: such numbers are never published.

What a render froze is published as it is, so it is read as a reader would see it too (`published_problems`): no
stderr block, no warning, no path of the machine that executed it, and no Markdown table whose rows have more or
fewer cells than its header (a `|` in a cell shifts every column after it). `check_published` applies that to
every frozen page of a site; `python -m lab check` runs both checks.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from lab.record import paths
from lab.config import UNPUBLISHABLE
from lab.record.records_used import noisy_text

from . import gpu_claims
from .freeze import FREEZE_DIR, entry_dir, leftovers
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
    if bad := UNPUBLISHABLE & set((frozen.get("lab") or {}).get("profiles") or []):
        problems.append(f"{rel}: {shown} was executed on the {', '.join(sorted(bad))} profile (a tiny or "
                        "random model: its numbers mean nothing); render the page on the cpu or gpu profile "
                        f"(without LAB_PROFILE={min(bad)})")
    problems += [f"{rel}: {p}" for p in record_problems(root, frozen.get("lab") or {})]
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


def record_problems(root: Path, lab: dict) -> list[str]:
    """What is wrong with the records a freeze entry lists (its `lab` key): changed or missing since the page was
    frozen, noisy, or synthetic. Each is looked up in the site's records folder (lab.record.paths.site_records_dir)."""
    profiles = lab.get("profiles") or [None]
    folder = paths.site_records_dir(root, profiles[0])
    problems = []
    for entry in lab.get("records") or []:
        name, hardware = entry.get("name"), entry.get("hardware")
        if entry.get("file"):     # a file outside the records folder (the class record), named from the site's root
            path, what = root / str(entry["file"]), f"{name} record {entry['file']}"
            where = path.parent.relative_to(root).as_posix()
        else:
            path, what, where = folder / str(name) / f"{hardware}.json", f"record {name} ({hardware})", folder
        try:
            now = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            now = None
        if now is None:
            problems.append(f"{what} is no longer in {where} (gone after the page was frozen); re-render it")
        elif now != entry.get("sha256"):
            problems.append(f"{what} changed after the page was frozen; re-render it")
        if entry.get("noisy"):
            problems.append(f"{what} was measured noisy ({noisy_text(entry)}); a noisy number is never published: "
                            "re-run `python -m lab course` on a quiet machine, which re-measures it")
        for why in entry.get("unpublishable") or []:
            problems.append(f"{what} holds a submission that is never published ({why}): gather the submissions "
                            "again with `python -m lab class DIR`, which refuses it, and re-render the page")
        if entry.get("synthetic"):
            problems.append(f"{what} is synthetic (a test's fake record, not a measurement); a page that shows it is "
                            "never published: remove the record and re-render the page")
    return problems


# Where an executing machine's paths start: home folders, temp folders, Python's package folders (Linux, macOS,
# Windows). A page that names one publishes the instructor's file system and means a warning or traceback leaked.
_LOCAL_PATH = re.compile(r"(/home/|/root/|/Users/|/tmp/|/var/folders/|/work/|site-packages|dist-packages|"
                         r"[A-Za-z]:\\\\Users\\\\)")
_WARNING = re.compile(r"\b[A-Z]\w*Warning: |\[W:onnxruntime|\bWARNING \|")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")      # a pipe that is not escaped as \|


def table_row_cells(line: str) -> int:
    """Cells of one pipe-table row, `| a | b\\|c |` -> 2 (an escaped pipe is text)."""
    return len(_CELL_SPLIT.split(line.strip().strip("|"))) if line.strip() != "|" else 0


def published_problems(markdown: str) -> list[str]:
    """What a reader should not see in a frozen page's markdown (see the module docstring)."""
    problems = []
    if ".cell-output-stderr" in markdown:
        problems.append("a cell printed to stderr (the page would publish it)")
    for pattern, what in ((_WARNING, "a warning"), (_LOCAL_PATH, "a path of the executing machine")):
        found = pattern.search(markdown)
        if found:
            line = markdown[:found.start()].count("\n") + 1
            context = markdown.splitlines()[line - 1].strip()[:100]
            problems.append(f"{what} on line {line} of the frozen markdown: {context!r}")
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        # a pipe table: a header row, then a delimiter row of dashes and colons
        if i + 1 < len(lines) and line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            width = table_row_cells(line)
            for j in range(i + 1, len(lines)):
                if not lines[j].startswith("|"):
                    break
                if table_row_cells(lines[j]) != width:
                    problems.append(f"table row on line {j + 1} has {table_row_cells(lines[j])} cells, its header "
                                    f"{width}: {lines[j].strip()[:80]!r}")
    return problems


def check_site(root: Path) -> list[str]:
    """Problems with the site's freeze entries; empty when every executed page is fresh."""
    root = Path(root).resolve()
    pages = site_pages(root)
    if not pages:
        where = ("the folder does not exist" if not root.is_dir()
                 else "no index.qmd, course/*.qmd or page listed in _quarto.yml")
        return [f"{root}: no pages to check ({where}); pass the project folder with --root"]
    problems: list[str] = []
    for rel in pages:
        problems += check_page(root, rel)
    for p in leftovers(root):
        problems.append(f"{p.relative_to(root).as_posix()}: left by an interrupted render; the next "
                        "`python -m lab render` puts it back or removes it")
    return problems


def check_published(root: Path) -> list[str]:
    """published_problems of every frozen page of the site, each named by its page."""
    root = Path(root).resolve()
    problems = []
    for rel in site_pages(root):
        html_json = entry_dir(root, rel) / "execute-results" / "html.json"
        try:
            markdown = json.loads(html_json.read_text(encoding="utf-8"))["result"]["markdown"]
        except (OSError, ValueError, KeyError, TypeError):
            continue                # missing or unreadable: check_site reports it
        problems += [f"{rel}: {p}" for p in published_problems(markdown)]
    return problems + gpu_claims.problems(root, site_pages(root))     # a GPU result needs a cuda-* record
