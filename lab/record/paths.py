"""Where lab reads and writes: the course checkout when it runs from one, else a working folder.

lab runs in two places. In the course repository (the instructor, CI, `make course`) its records belong in
`course/measurements/` and its checkpoints in `runs/`, beside the pages that show them. Pip-installed in a
student's notebook there is no repository: the package sits in site-packages, which is no place for 500 MB of
checkpoints. There everything goes to a working folder in the current directory:

    ./lab-output/measurements/<name>/<hardware>.json     records (lab.record.store)
    ./lab-output/runs/<profile>-<model>/step-NNNNNN/      checkpoints (lab.train)

Overrides, most specific first: `$LAB_RECORDS` and `$LAB_RUNS` name one folder each; `$LAB_HOME` moves the
working folder (also in a checkout). Runs of an unpublishable profile (UNPUBLISHABLE: smoke's tiny models,
the rehearsals' random-init ones) never touch the course's folders: without `$LAB_HOME` they go to a per-user temp
folder per profile (under it, to `$LAB_HOME/<profile>/`), so a test or a rehearsal cannot overwrite the course's
records.

A read-only `$LAB_HOME` (on Kaggle, `/kaggle/input/<dataset>/lab-output`: an earlier session's output made a data
set) is read, never written. lab then writes to a writable output folder: `$LAB_OUTPUT`, else
`/kaggle/working/lab-output` where `/kaggle/working` exists, else `./lab-output` (output_home). That folder is seeded
from the read-only home once per process, before lab first uses it (seed): every record file it lacks is copied
(kilobytes), and every run folder it lacks gets the run's newest checkpoint and its other files (an adapter, say),
copied, not linked: a link into /kaggle/input would dangle in the next session, which sees only the data sets
attached to it, and hard links cannot cross file systems. The cost is a copy of each run's newest checkpoint
(weights plus optimizer state, about three times the weights) once per session, said in one line with its size and
time: on the cpu profile all six runs of weeks 1-5 come to 885 MB (`du` of this checkout's runs/, week 1's alone
261 MB); on the gpu profile, ModernBERT-base's 150 M parameters make about 1.8 GB for week 1's run alone (an
estimate from its size, not measured). What the output folder already has wins. So the output
folder holds everything, the earlier weeks' and this session's, and is itself what the next session reads.
Under `$LAB_HOME` an unpublishable profile keeps to its own subfolder, `$LAB_HOME/<profile>/`, so its records never
replace the course's (they are keyed by hardware, not by profile).

A site rendered into another folder (`python -m lab course --root DIR`) keeps its records in DIR/course/measurements
(site_records_dir): the page kernels are told so, and `python -m lab check --root DIR` looks there.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
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


def writable(folder: Path) -> bool:
    """Whether lab can write into `folder`: its nearest existing ancestor accepts writes (a missing folder is made).
    access(2) answers EROFS on a read-only mount even for root, who passes every permission check."""
    folder = Path(folder).absolute()
    for existing in (folder, *folder.parents):
        if existing.exists():
            return os.access(existing, os.W_OK | os.X_OK)
    return False


def read_only_home() -> Path | None:
    """`$LAB_HOME` when it is set and cannot be written (an attached Kaggle data set), else None."""
    given = home()
    return given if given is not None and not writable(given) else None


def output_home() -> Path | None:
    """Where lab writes when `$LAB_HOME` is set: the home itself when writable; when it is read-only, `$LAB_OUTPUT`,
    else /kaggle/working/lab-output on Kaggle (the one folder a Kaggle session keeps as its output), else
    ./lab-output. None without `$LAB_HOME`."""
    given = home()
    if given is None or writable(given):
        return given
    if os.environ.get("LAB_OUTPUT"):
        out = Path(os.environ["LAB_OUTPUT"]).expanduser()
    elif Path("/kaggle/working").is_dir():
        out = Path("/kaggle/working") / WORKING_FOLDER
    else:
        out = Path.cwd() / WORKING_FOLDER
    if out.absolute() == given.absolute():
        raise ValueError(f"LAB_HOME={given} is read-only and lab would write its outputs there too ({out}); set "
                         f"LAB_OUTPUT to a writable folder, e.g. %env LAB_OUTPUT=/kaggle/working/{WORKING_FOLDER}")
    return out


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
    """Where measurement records live: $LAB_RECORDS; $LAB_HOME/measurements (the output folder when $LAB_HOME is
    read-only; <home>/<profile>/ for smoke and rehearsals); smoke and rehearsals -> temp; the checkout's
    course/measurements; else ./lab-output/measurements."""
    if os.environ.get("LAB_RECORDS"):
        return Path(os.environ["LAB_RECORDS"]).expanduser()
    if home() is not None:
        return seeded(home_part(profile_name) / "measurements")
    if _unpublishable(profile_name):
        return smoke_dir("records", profile_name)
    root = checkout()
    return root / "course" / "measurements" if root else Path.cwd() / WORKING_FOLDER / "measurements"


def runs_dir(profile_name: str | None = None) -> Path:
    """Where fine-tuned checkpoints live: $LAB_RUNS; $LAB_HOME/runs (as for records_dir); smoke and rehearsals ->
    temp; the checkout's runs/; else ./lab-output/runs."""
    if os.environ.get("LAB_RUNS"):
        return Path(os.environ["LAB_RUNS"]).expanduser()
    if home() is not None:
        return seeded(home_part(profile_name) / "runs")
    if _unpublishable(profile_name):
        return smoke_dir("runs", profile_name)
    root = checkout()
    return root / "runs" if root else Path.cwd() / WORKING_FOLDER / "runs"


def home_part(profile_name: str | None, base: Path | None = None) -> Path:
    """The part of a home folder (default: the output home) a profile uses: the folder itself, or <folder>/<profile>
    for an unpublishable one."""
    base = output_home() if base is None else base
    return base / profile_name if _unpublishable(profile_name) else base


# ---------------------------------------------------------------- seeding the output folder from a read-only home

_seeded: set[str] = set()        # 'source -> output' pairs this process has seeded (once each: later calls cost nothing)


def seeded(folder: Path) -> Path:
    """`folder` (under the output home), first seeded from its counterpart under a read-only `$LAB_HOME`."""
    source_home = read_only_home()
    if source_home is None:
        return folder
    source = source_home / folder.relative_to(output_home())
    if f"{source} -> {folder}" in _seeded:
        return folder
    _seeded.add(f"{source} -> {folder}")
    if not source_home.is_dir():       # a data set not attached, or attached under another name: say so, once
        from lab.record.progress import note
        note(f"[lab] LAB_HOME={source_home} does not exist and cannot be made here, so there is nothing earlier to "
             f"read: check that the data set is attached under that name (Kaggle: /kaggle/input/<its name>/). "
             f"New outputs go to {output_home()}")
    elif source.is_dir():
        seed(source, folder, runs=folder.name == "runs")
    return folder


def _skipped(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(".tmp")     # locks, half-written files


def _newest_steps(run: Path) -> list[Path]:
    """A run folder's entries to copy: its newest checkpoint ('step-NNNNNN', as lab.checkpoint.latest picks it) and
    every entry that is no checkpoint (a saved adapter, say)."""
    entries = sorted(p for p in run.iterdir() if not _skipped(p))
    steps = [p for p in entries if p.name.startswith("step-") and p.name[5:].isdigit()]
    return [p for p in entries if p not in steps] + steps[-1:]


def _copy_into(entries: list[Path], target: Path) -> int:
    """Copy `entries` into a new folder `target`, written under a temporary name and renamed into place, so a
    kill mid-copy leaves no half run that would look finished. Returns the bytes copied."""
    tmp = target.with_name(f".{target.name}.seeding-{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for entry in entries:
            if entry.is_dir():
                shutil.copytree(entry, tmp / entry.name, ignore=shutil.ignore_patterns(".*", "*.tmp"))
            else:
                shutil.copy2(entry, tmp / entry.name)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file())


def seed(source: Path, target: Path, runs: bool) -> None:
    """Copy into `target` what it lacks of `source`: every record file (modification times kept: they say which
    run measured a record), or for a runs folder each missing run's newest checkpoint. What `target` has wins."""
    from lab.record import lock              # below: lock imports progress only; paths imports nothing else
    from lab.record.progress import note
    start, copied, what = time.perf_counter(), 0, []
    with lock.hold(target, "seeding from a read-only LAB_HOME"):
        if runs:
            for run in sorted(p for p in source.iterdir() if p.is_dir() and not _skipped(p)):
                if not (target / run.name).exists():
                    copied += _copy_into(_newest_steps(run), target / run.name)
                    what.append(run.name)
        else:
            for record in sorted(source.rglob("*.json")):
                out = target / record.relative_to(source)
                if not _skipped(record) and not out.exists():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(record, out)
                    copied += record.stat().st_size
                    what.append(record.relative_to(source).as_posix())
    if what:
        kind = f"{len(what)} run{'s' if len(what) != 1 else ''} (newest checkpoint each: {', '.join(what)})" \
            if runs else f"{len(what)} record{'s' if len(what) != 1 else ''}"
        note(f"[lab] LAB_HOME {source.parent} is read-only: copied {kind} into {target}, "
             f"{copied / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s; new outputs go there")


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
