"""python -m lab COMMAND: the course from the command line.

    course   execute every page (index.qmd, course/*.qmd) into _freeze/, write the student notebooks, and run
             `quarto render` when Quarto is installed; a failing page does not stop the others (listed at the
             end, exit 1). --root DIR: the same into DIR, copying the site's sources there first if it has none
    render   execute the named pages into DIR/_freeze (default: the repo)
    check    fail, naming the page, when a frozen page is stale (hash != md5 of its source, or a record it shows
             changed or is gone), lacks a figure, or shows a smoke, noisy or synthetic result
    status   list the measurement records with their provenance, and mark the stale, noisy and synthetic ones
    profile  show the profile that would be used here, and why
    verify   the teachability scorecard of a model: eight checks, a Markdown table, JSON with --json
    class    gather a folder of student submissions (lab.record.submission) into the class record that
             course/class.qmd shows; --course WEEK,... first adds the course's own records of those weeks as a
             submission; ends with a table: accepted, refused with reason, duplicates
"""
from __future__ import annotations

import signal
import time

# Ctrl-C is noted from the first instant, not raised: a KeyboardInterrupt raised while torch (a C++ extension)
# imports can abort the process ("terminate called after throwing an instance of 'pybind11::error_already_set'")
# or make Python end by SIGINT whatever main returns. `course` and `render` stop at their next step, saying where
# (lab.site.execute.ctrl_c takes these presses over); the other commands stop once their arguments are read. A
# second Ctrl-C raises KeyboardInterrupt at once.
PRESSES: list[float] = []


def _note_ctrl_c(signum, frame):
    PRESSES.append(time.monotonic())
    if len(PRESSES) > 1:
        raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _note_ctrl_c)

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from lab.record import paths  # noqa: E402


def _noted() -> list[float] | None:
    """The presses noted so far, when this process notes them (run as `python -m lab`), else None."""
    return PRESSES if signal.getsignal(signal.SIGINT) is _note_ctrl_c else None

QUARTO_INSTALL = "https://quarto.org/docs/get-started/ (any OS; `quarto render` then publishes from _freeze/)"


def project_root(given: str | None = None) -> Path:
    """The course site to work on: --root, else the checkout lab runs from, else the nearest folder at or above the
    current directory that holds _quarto.yml (a pip-installed lab run inside a clone of the course)."""
    root = Path(given) if given else (paths.checkout() or paths.site_root())
    if root is None:
        raise ValueError(f"no course site here: neither this lab ({paths.package_parent()}) nor {Path.cwd()} or a "
                         f"folder above it holds _quarto.yml; run this in a clone of the course, or pass --root DIR")
    return root.resolve()


def site_pages(root: Path) -> list[Path]:
    """Every page of the site: index.qmd, course/*.qmd, and any page _quarto.yml lists (lab.site.check decides)."""
    from lab.site.check import site_pages as pages
    return [root / rel for rel in pages(root)]


def _render(pages: list[Path], root: Path) -> int:
    from lab.site import PageError, render_pages
    for page in pages:
        page = page.resolve()
        if not page.exists():
            print(f"error: {page}: no such file", file=sys.stderr)
            return 2
        if not page.is_file() or page.suffix != ".qmd":
            print(f"error: {page} is not a .qmd page (pages are Quarto .qmd files)", file=sys.stderr)
            return 2
        try:
            page.relative_to(root)
        except ValueError:
            print(f"error: {page} is outside the project root {root}; pass --root", file=sys.stderr)
            return 2
    from lab.record.lock import Busy
    from lab.site.execute import Interrupted, ctrl_c
    try:
        with ctrl_c(_noted()):
            render_pages([p.resolve() for p in pages], root)
    except Interrupted as e:
        print(interrupted_line(e), file=sys.stderr)
        return 130
    except PageError as e:
        print(f"error: {e}", file=sys.stderr)
        print("error: that page was not frozen and its previous _freeze entry is untouched", file=sys.stderr)
        return 1
    except Busy as e:
        print(f"error: cannot render: {e}", file=sys.stderr)
        return 1
    return 0


def interrupted_line(e) -> str:
    """The one line a Ctrl-C ends `render` or `course` with: where it stopped (lab.site.execute.Interrupted)."""
    said = " ".join(line.strip() for line in str(e).splitlines() if line.strip())       # one line, always
    return f"interrupted: {said}" + (" (its previous _freeze entry is untouched)" if getattr(e, "kept", True) else "")


def cmd_render(args) -> int:
    root = project_root(args.root)
    return _render([Path(p) for p in args.pages], root)


# What `course --root DIR` copies into an empty DIR: the site's sources, never its outputs (_freeze, measurements).
SITE_SOURCES = ("_quarto.yml", "index.qmd", "course/*.qmd", "requirements-offline.txt")


def copy_site_sources(source: Path, target: Path) -> list[Path]:
    """Copy the site's sources (SITE_SOURCES) from `source` into `target`; returns the files copied."""
    copied = []
    for pattern in SITE_SOURCES:
        for path in sorted(source.glob(pattern)):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied.append(dest)
    return copied


def _course_root(given: str | None) -> Path:
    """The site `course` executes: the checkout's, or --root DIR, seeded with the checkout's sources when it has
    no _quarto.yml (its records then live in DIR/course/measurements: lab.record.paths.site_records_dir)."""
    if not given:
        return project_root()
    root = Path(given).resolve()
    if not (root / "_quarto.yml").is_file():
        source = project_root()
        copied = copy_site_sources(source, root)
        print(f"[lab] copied {len(copied)} source files of {source} into {root} (no _freeze, no measurements)")
    return root


def cmd_course(args) -> int:
    from lab.site.execute import ctrl_c
    stage = ["before its first page"]       # where a second Ctrl-C, outside the pages, stops it
    try:
        with ctrl_c(_noted()) as ctrl:
            return _course(args, stage, ctrl)
    except KeyboardInterrupt:
        print(f"interrupted: python -m lab course stopped {stage[0]} (Ctrl-C)", file=sys.stderr)
        return 130


def _course(args, stage: list, ctrl) -> int:
    """cmd_course under lab.site.execute.ctrl_c: a Ctrl-C stops it at the next step, saying where."""
    from lab.record.lock import Busy
    from lab.display.report import site_settings
    from lab.site import render_every_page, write_notebooks
    from lab.site.execute import Interrupted

    def stopped(where: str) -> int | None:
        if ctrl.pressed():
            print(f"interrupted: python -m lab course stopped {where} (Ctrl-C)", file=sys.stderr)
            return 130
        return None

    root = _course_root(args.root)
    profile, how = _profile_choice()
    print(f"[lab] course on profile {profile.name!r} ({how}) in {root}")
    pages = site_pages(root)
    stage[0] = ("while rendering its pages (those rendered keep their new _freeze entries, the others their "
                "previous ones)")
    try:
        rendered = render_every_page(pages, root)     # a Ctrl-C before or in a page: Interrupted
    except Interrupted as e:
        print(interrupted_line(e), file=sys.stderr)
        return 130
    except Busy as e:
        print(f"error: cannot render: {e}", file=sys.stderr)
        return 1
    stage[0] = "after its pages, while writing the student notebooks (the pages' _freeze entries are written)"
    install = site_settings(root).get("notebook-install", "ecbs5200-lab")
    written = write_notebooks(pages, root, root / "notebooks", install)
    print(f"[lab] {len(written)} student notebooks in {root / 'notebooks'}")
    if stopped("after writing the student notebooks (the pages' _freeze entries are written)"):
        return 130
    stage[0] = "after its pages and notebooks"
    if rendered.failed:
        print(f"[lab] {len(rendered.failed)} of {len(pages)} pages failed; each keeps its previous _freeze entry:",
              file=sys.stderr)
        for page, reason in rendered.failed.items():
            print(f"  {page}: {reason}", file=sys.stderr)
        print("fix them and run `python -m lab render PAGE.qmd` for each (or the course again); quarto render "
              "was not run", file=sys.stderr)
        return 1
    if shutil.which("quarto"):
        print("[lab] quarto render (reuses _freeze/, executes nothing)")
        stage[0] = "in `quarto render` (the pages' _freeze entries and notebooks are written)"
        code = subprocess.run(["quarto", "render"], cwd=root).returncode   # quarto gets the Ctrl-C itself
        return stopped(f"in `quarto render`, which ended with exit code {code} (the pages' _freeze entries and "
                       "notebooks are written)") or code
    print(f"[lab] no `quarto` on PATH, so the site was not built. _freeze/ is complete: install Quarto from "
          f"{QUARTO_INSTALL}, then run `quarto render` here.")
    return 0


def cmd_check(args) -> int:
    from lab.site import check_published, check_site
    root = project_root(args.root)
    problems = check_site(root) + check_published(root)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {root}; each line says its fix (then commit _freeze/)",
              file=sys.stderr)
        return 1
    print(f"ok: {len(site_pages(root))} pages in {root}, every executed one frozen, fresh (its source and the "
          "records it shows unchanged), and not from smoke, noisy or synthetic records")
    return 0


def cmd_status(args) -> int:
    from lab.config import PROFILES
    from lab.display.report import provenance_rows
    from lab.record import env, store
    folder = Path(args.dir) if args.dir else store.records_dir()
    rows = [{**(provenance_rows([r["record"]])[0] if r["record"] else {"measurement": r["measurement"],
                                                                         "hardware": r["key"]}),
             "stale": r["stale"], "mark": r["mark"], "key": r["key"]} for r in store.status(folder, PROFILES)]
    if not rows:
        print(f"no records under {folder}")
        return 0
    import pandas as pd
    df = pd.DataFrame(rows)
    df["stale"] = df["stale"].replace("", "fresh")
    print(f"records under {folder}:")
    print(df.drop(columns="key").fillna("").to_string(index=False))   # an unreadable record has only 4 columns
    stale = df[df["stale"] != "fresh"]
    marked = df[df["mark"] != ""]
    print(f"{len(df)} record(s), {len(stale)} stale or unreadable, {len(marked)} noisy or synthetic")
    if len(marked):
        print("  a noisy or synthetic record is never published (`python -m lab check` refuses its pages); the next "
              "run re-measures a noisy one, on a quiet machine.")
    here = {store.hardware_key("cpu")} | ({store.hardware_key("cuda")} if env.gpu() else set())
    if stale["key"].isin(here).any():
        print(f"  {', '.join(sorted(here))} is this machine: re-render the pages that measure them "
              "(`python -m lab render PAGE.qmd`, or `make course`); a stale or unreadable record is re-measured. "
              "LAB_REMEASURE=1 re-measures every record once per run, fresh ones too.")
    elsewhere = sorted(set(stale["key"]) - here)
    if elsewhere:
        print(f"  {', '.join(elsewhere)}: other hardware (this machine is {', '.join(sorted(here))}); only a "
              "render there can re-measure those.")
    return 0


def _profile_choice():
    """(the profile this machine runs, how it was chosen in words), including a fall-back from gpu to cpu."""
    from lab import models
    from lab.config import get_profile
    chosen = get_profile()
    by = (f"LAB_PROFILE={os.environ['LAB_PROFILE']}" if os.environ.get("LAB_PROFILE")
          else f"the hardware ({'a' if chosen.name == 'gpu' else 'no'} CUDA GPU)")
    resolved = models.resolve_profile(chosen)
    if resolved.name == chosen.name:
        return resolved, f"chosen by {by}"
    return resolved, (f"{by} chose {chosen.name!r}, but its model {chosen.model} cannot be had here, "
                      f"so it fell back to {resolved.name!r}")


def cmd_profile(args) -> int:
    resolved, how = _profile_choice()
    print(f"profile: {resolved.name} (model {resolved.model}); {how}")
    for k, v in resolved.to_dict().items():
        print(f"  {k:18} {v}")
    return 0


def cmd_verify(args) -> int:
    """Bad usage (an unknown model or check, a hub id offline) raises ValueError: main prints it, exit 2."""
    import json
    from lab.recipes import verify
    from lab.display import scorecard
    from lab.config import get_profile
    only = verify.parse_only(args.only)
    kind = verify.resolve(args.model)
    profile = get_profile(args.profile)
    print(f"[verify] {args.model} ({kind}) on profile {profile.name!r}: {', '.join(only)}", flush=True)
    record = verify.record(args.model, profile, only)
    card = record["result"]
    print("\n" + scorecard.markdown(card))
    print(f"\n{len(card['checks'])} checks in {record['wall_s']:.0f} s; record: {verify.record_name(args.model)}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"JSON: {args.json}")
    failed = verify.failed(card)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def course_files(root: Path, week: str) -> list[tuple[str, Path]]:
    """The records the week's frozen page showed, (name, file), in the site's records folder."""
    import json
    from lab.record.submission import week_of
    from lab.site.freeze import entry_dir
    pages = [rel for rel in (p.relative_to(root).as_posix() for p in site_pages(root)) if week_of(Path(rel).stem) == week]
    if not pages:
        raise ValueError(f"no page of {week} in {root}")
    html_json = entry_dir(root, pages[0]) / "execute-results" / "html.json"
    if not html_json.is_file():
        raise ValueError(f"{pages[0]} has no freeze entry: render it first (python -m lab render {pages[0]})")
    lab = json.loads(html_json.read_text(encoding="utf-8")).get("lab") or {}
    folder = paths.site_records_dir(root, (lab.get("profiles") or [None])[0])
    return [(e["name"], folder / e["name"] / f"{e['hardware']}.json") for e in lab.get("records") or []
            if not e.get("file")]


def cmd_class(args) -> int:
    from lab.record import class_record, store, submission
    root = project_root(args.root)
    folder = Path(args.dir)
    out = Path(args.out) if args.out else root / "course" / "class"
    for week in [w.strip() for w in (args.course or "").split(",") if w.strip()]:
        doc = submission.course_submission(submission.check_week(week), course_files(root, week))
        path = folder / f"{week}-{submission.COURSE_ALIAS}.json"
        store.write_atomic(path, submission.text(doc))
        print(f"[lab] the course's {week} ({len(doc['records'])} records) -> {path}")
    record, rows = class_record.gather(folder)
    path = class_record.write(record, out)
    print(f"[lab] class record: {len(record['submissions'])} submission(s) -> {path}")
    print(class_record.table(rows))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    co = sub.add_parser("course", help="execute every page, write notebooks, quarto render if available")
    co.add_argument("--root", help="run the course into DIR (its sources are copied there first when it has no "
                                   "_quarto.yml; records go to DIR/course/measurements)")
    r = sub.add_parser("render", help="execute pages into DIR/_freeze")
    r.add_argument("pages", nargs="+")
    r.add_argument("--root", help="project root (default: this checkout, or the site around the current folder)")
    c = sub.add_parser("check", help="fail when a frozen page is stale or lacks a figure")
    c.add_argument("--root", help="project root (default: as for render)")
    s = sub.add_parser("status", help="list measurement records and mark stale ones")
    s.add_argument("--dir", help="records folder (default: course/measurements)")
    sub.add_parser("profile", help="show the profile used here")
    v = sub.add_parser("verify", help="the teachability scorecard of a model (registry key, hub id or folder)")
    v.add_argument("model", help="a registry key (e.g. minilm), a hub id (owner/name, online) or a checkpoint folder")
    v.add_argument("--profile", help="smoke, cpu or gpu (default: LAB_PROFILE, else from the hardware)")
    v.add_argument("--only", help="comma-separated checks to run (default: all eight; an unknown name lists them)")
    v.add_argument("--json", help="also write the scorecard record (checks, numbers, provenance) to this file")
    cl = sub.add_parser("class", help="gather a folder of submissions into the class record (course/class.qmd)")
    cl.add_argument("dir", help="the folder of submission files (as downloaded from the hand-in; read, never run)")
    cl.add_argument("--out", help="where the class record goes (default: course/class of the site)")
    cl.add_argument("--course", help="first add the course's own records of these weeks (week1,week4) to DIR")
    cl.add_argument("--root", help="project root (default: as for render)")
    args = ap.parse_args(argv)
    noted = _noted()
    try:
        if noted is not None and args.cmd not in ("course", "render"):     # these stop at a Ctrl-C at once
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if noted:
                raise KeyboardInterrupt
        code = {"course": cmd_course, "render": cmd_render, "check": cmd_check,
                "status": cmd_status, "profile": cmd_profile, "verify": cmd_verify, "class": cmd_class}[args.cmd](args)
    except ValueError as e:    # bad input (an unknown profile, say): the message already says what to do
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # Ctrl-C outside a page's cells (a page's own interrupt is handled in _render)
        kept = ("; pages rendered so far keep their new _freeze entries, the others their previous ones"
                if args.cmd in ("course", "render") else "")
        print(f"interrupted: python -m lab {args.cmd} stopped (Ctrl-C){kept}", file=sys.stderr)
        return 130
    if noted and code != 130:    # a Ctrl-C noted after the command's last step
        print(f"interrupted: python -m lab {args.cmd} stopped as it ended (Ctrl-C; it would have exited with {code})",
              file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
