"""Where lab reads and writes: the course checkout when it runs from one, else a working folder.

lab runs in two places. In the course repository (the instructor, CI, `make course`) its records belong in
`course/measurements/` and its checkpoints in `runs/`, beside the pages that show them. Pip-installed in a
student's notebook there is no repository: the package sits in site-packages, which is no place for 500 MB of
checkpoints. There everything goes to a working folder in the current directory:

    ./lab-output/measurements/<name>/<hardware>.json     records (lab.record.store)
    ./lab-output/runs/<profile>-<model>/step-NNNNNN/      checkpoints (lab.train)

Overrides, most specific first: `$LAB_RECORDS` and `$LAB_RUNS` name one folder each; `$LAB_HOME` moves the
working folder (also in a checkout). Runs of an unpublishable profile (UNPUBLISHABLE: smoke's tiny models,
the rehearsals' random-init ones) never touch either place: they go to a per-user temp folder per profile, so a
test or a rehearsal cannot overwrite the course's records.

A site rendered into another folder (`python -m lab course --root DIR`) keeps its records in DIR/course/measurements
(site_records_dir): the page kernels are told so, and `python -m lab check --root DIR` looks there.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

WORKING_FOLDER = "lab-output"


def package_parent() -> Path:
    """The folder that holds the `lab` package: the checkout's root, or site-packages when installed."""
    return Path(__file__).resolve().parents[2]      # lab/record/paths.py -> the folder that holds lab/


def checkout() -> Path | None:
    """The course repository lab runs from, or None when lab is installed (no `_quarto.yml` beside `lab/`)."""
    root = package_parent()
    return root if (root / "_quarto.yml").is_file() else None


def home() -> Path | None:
    """`$LAB_HOME` if set, else None: the checkout's own folders are used in a checkout, `./lab-output` outside."""
    return Path(os.environ["LAB_HOME"]).expanduser() if os.environ.get("LAB_HOME") else None


def _user() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def smoke_dir(kind: str, profile_name: str = "smoke") -> Path:
    """A per-user temp folder for an unpublishable profile's output of one kind ('records', 'runs')."""
    return Path(tempfile.gettempdir()) / f"lab-{profile_name}-{kind}-{_user()}"


# Profiles whose pages must never be published: tiny or random-init models, so their numbers mean nothing (lab.config
# defines them and re-exports this set). `lab check` refuses a page executed on one; lab.display.claims only warns
# under one; their records and runs stay out of the course's folders. Named here, below the library, because where
# a record goes is the record machinery's decision.
UNPUBLISHABLE = frozenset({"smoke", "rehearsal", "rehearsal-smoke"})


def _unpublishable(profile_name: str | None) -> bool:
    return profile_name in UNPUBLISHABLE


def records_dir(profile_name: str | None = None) -> Path:
    """Where measurement records live: $LAB_RECORDS; smoke and rehearsals -> temp; $LAB_HOME/measurements;
    the checkout's course/measurements; else ./lab-output/measurements."""
    if os.environ.get("LAB_RECORDS"):
        return Path(os.environ["LAB_RECORDS"]).expanduser()
    if _unpublishable(profile_name):
        return smoke_dir("records", profile_name)
    if home() is not None:
        return home() / "measurements"
    root = checkout()
    return root / "course" / "measurements" if root else Path.cwd() / WORKING_FOLDER / "measurements"


def runs_dir(profile_name: str | None = None) -> Path:
    """Where fine-tuned checkpoints live: $LAB_RUNS; smoke (any profile but cpu/gpu) -> temp; $LAB_HOME/runs; the
    checkout's runs/; else ./lab-output/runs."""
    if os.environ.get("LAB_RUNS"):
        return Path(os.environ["LAB_RUNS"]).expanduser()
    if _unpublishable(profile_name):
        return smoke_dir("runs", profile_name)
    if home() is not None:
        return home() / "runs"
    root = checkout()
    return root / "runs" if root else Path.cwd() / WORKING_FOLDER / "runs"


def site_root(start: Path | None = None) -> Path | None:
    """The Quarto project being rendered: the nearest folder at or above `start` (default: the current
    directory, which is the page's folder while Quarto or lab.site executes it) that holds `_quarto.yml`."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_quarto.yml").is_file():
            return folder
    return None


def site_records_dir(root: Path, profile_name: str | None = None) -> Path:
    """The records folder of the site at `root`: what its pages' kernels read and write, and where `lab check`
    looks up the records a freeze lists. $LAB_RECORDS; for this checkout, records_dir(profile); for any other
    folder (a site copied by `lab course --root DIR`), DIR/course/measurements, whatever the profile."""
    if os.environ.get("LAB_RECORDS"):
        return Path(os.environ["LAB_RECORDS"]).expanduser()
    root = Path(root).resolve()
    if root == checkout():
        return records_dir(profile_name)
    return root / "course" / "measurements"
