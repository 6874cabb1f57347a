"""A submission: one week's measurement records, with their provenance, in one JSON file a student hands in.

    from lab.record.submission import submit
    submit("week1", alias="blue-heron")     # -> ./lab-output/submissions/week1-blue-heron.json

The last cell of each week's student notebook calls submit(): the file holds the records that notebook showed (what
lab.record.records_used noted in its kernel), read again from their files. `python -m lab class DIR` gathers a
folder of them into the class record (lab.record.class_record), which reads them as untrusted input.

The document (SCHEMA, VERSION 1):

    {"schema": "ecbs5200-submission", "version": 1, "week": "week1", "alias": "blue-heron",
     "source": "student" | "course", "submitted": "2026-12-03T15:00:00+00:00",
     "profiles": ["cpu"], "marks": [], "noisy": [], "records": [<record>, ...]}

Each record is the one lab.record.store keeps (name, config, result, wall_s, provenance, and its noisy or synthetic
mark), less its code fingerprint. The alias is the student's choice (ALIAS: lowercase letters, digits, '-'), never a
name or path of their machine; every string is scrubbed of this machine's home, working, temp and Python folders
and of the user's login name (scrubbed). `marks` says why a submission is never counted: a smoke or rehearsal
profile (tiny or random models) or a synthetic record. `noisy` names records measured on a busy machine: counted,
and shown as such.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path

from lab.record import env, paths, records_used, store

SCHEMA = "ecbs5200-submission"
VERSION = 1
WEEKS = tuple(f"week{n}" for n in range(1, 7))
ALIAS = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SOURCES = ("student", "course")
COURSE_ALIAS = "course"          # the course's own records, joined as a submission (course_submission)
KEPT = ("name", "config", "result", "wall_s", "provenance", "noisy", "synthetic")   # of a record


def week_of(page_stem: str) -> str | None:
    """'week4' for the page '04-quantization', None for a page that is no week (the index, picking a model)."""
    m = re.match(r"0?([1-6])-", page_stem)
    return f"week{m.group(1)}" if m else None


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise ValueError(f"alias {alias!r}: use 1 to 32 lowercase letters, digits and '-', starting with a letter or "
                         "digit (a name you choose, e.g. 'blue-heron'; never your real name)")
    if alias == COURSE_ALIAS:
        raise ValueError(f"alias {alias!r} is the course's own; choose another (e.g. 'blue-heron')")
    return alias


def check_week(week: str) -> str:
    if week not in WEEKS:
        raise ValueError(f"week {week!r}: one of {', '.join(WEEKS)}")
    return week


# ---------------------------------------------------------------- no path or name of the student's machine

def private_strings() -> list[tuple[str, str]]:
    """(this machine's string, what replaces it), longest first: its folders, then the login name."""
    folders = {str(Path.home()): "<home>", str(Path.cwd()): "<working folder>", sys.prefix: "<python>",
               tempfile.gettempdir(): "<temp>"}
    pairs = [(k, v) for k, v in folders.items() if len(k) > 1]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):        # no login name (a container's anonymous uid)
        user = ""
    if len(user) >= 3:                 # 'me' would eat every 'me' in a sentence
        pairs.append((user, "<user>"))
    return sorted(pairs, key=lambda p: -len(p[0]))


def scrubbed(obj, pairs: list[tuple[str, str]]):
    """`obj` with every private string in its strings (and keys) replaced."""
    if isinstance(obj, str):
        for private, public in pairs:
            if private in obj:
                obj = (re.sub(rf"\b{re.escape(private)}\b", public, obj) if public == "<user>"
                       else obj.replace(private, public))
        return obj
    if isinstance(obj, dict):
        return {scrubbed(k, pairs): scrubbed(v, pairs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrubbed(v, pairs) for v in obj]
    return obj


# ---------------------------------------------------------------- the document

def profile_of(record: dict) -> str | None:
    profile = (record.get("config") or {}).get("profile")
    return profile.get("name") if isinstance(profile, dict) else None


def marks_of(records: list[dict]) -> list[str]:
    """Why a submission of these records is never counted ([] when it is)."""
    marks = []
    for name in sorted({p for r in records if (p := profile_of(r)) in paths.UNPUBLISHABLE}):
        marks.append(f"profile {name!r}: a tiny or random-init model, its numbers mean nothing")
    synthetic = sorted({str(r.get("name")) for r in records if r.get("synthetic")})
    if synthetic:
        marks.append(f"synthetic record(s) {', '.join(synthetic)}: a test's fake, not a measurement")
    return marks


def build(week: str, alias: str, records: list[dict], source: str = "student", when: str | None = None) -> dict:
    """The submission document of `records` (as lab.record.store keeps them)."""
    check_week(week)
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: one of {', '.join(SOURCES)}")
    if source == "student":
        check_alias(alias)
    if not records:
        raise ValueError(f"no records to submit for {week}: run the notebook's cells first (each measurement it "
                         "shows is a record), then this cell")
    kept = [{k: r[k] for k in KEPT if k in r} for r in records]
    return {
        "schema": SCHEMA, "version": VERSION, "week": week, "alias": alias, "source": source,
        "submitted": when or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "profiles": sorted({p for r in kept if (p := profile_of(r))}),
        "marks": marks_of(kept),
        "noisy": sorted({str(r.get("name")) for r in kept if r.get("noisy")}),
        "records": kept,
    }


def text(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def read_records(files: list[tuple[str, Path]]) -> list[dict]:
    """The records stored in `files` ((name, path) pairs), each read as it is now; a missing one is left out."""
    out = []
    for name, path in files:
        record = store.read(Path(path))
        if record is not None:
            out.append({**record, "name": record.get("name", name)})
    return out


# ---------------------------------------------------------------- a student's submit()

def submissions_dir() -> Path:
    """Where submit() writes: $LAB_SUBMISSIONS, else the output folder's submissions/ (./lab-output/submissions;
    /kaggle/working/lab-output/submissions under a read-only LAB_HOME on Kaggle)."""
    if os.environ.get("LAB_SUBMISSIONS"):
        return Path(os.environ["LAB_SUBMISSIONS"]).expanduser()
    return (paths.output_home() or Path.cwd() / paths.WORKING_FOLDER) / "submissions"


def default_alias(folder: Path) -> str:
    """$LAB_ALIAS, else the alias made up for this output folder the first time (kept in alias.txt), so that a
    resubmission carries the same alias and replaces the earlier one."""
    if os.environ.get("LAB_ALIAS"):
        return check_alias(os.environ["LAB_ALIAS"])
    kept = folder / "alias.txt"
    if kept.is_file() and ALIAS.fullmatch(stored := kept.read_text(encoding="utf-8").strip()):
        return stored
    alias = f"student-{secrets.token_hex(3)}"
    store.write_atomic(kept, alias + "\n")
    return alias


def submit(week: str, alias: str | None = None, out: Path | None = None) -> Path:
    """Write this notebook's submission of `week` (the records its kernel showed) and say what it holds."""
    check_week(week)
    folder = Path(out) if out is not None else submissions_dir()
    alias = check_alias(alias) if alias else default_alias(folder)
    doc = scrubbed(build(week, alias, read_records(records_used.used_files())), private_strings())
    path = folder / f"{week}-{alias}.json"
    body = text(doc)
    store.write_atomic(path, body)
    names = ", ".join(r["name"] for r in doc["records"])
    machines = ", ".join(dict.fromkeys(device(r) for r in doc["records"]))
    print(f"Wrote {path.name} ({len(body) / 1e3:.0f} kB) in {folder.name}/, as {alias!r}: {len(doc['records'])} "
          f"records ({names}) on {machines}, profile {', '.join(doc['profiles']) or 'none'}.")
    for mark in doc["marks"]:
        print(f"Marked, never counted on the class page: {mark}.")
    if doc["noisy"]:
        print(f"Measured on a busy machine (shown as such): {', '.join(doc['noisy'])}.")
    if not doc["marks"]:
        print("Upload this file to the course's hand-in. Resubmitting (same alias and week) replaces it.")
    return path


def device(record: dict) -> str:
    return env.device_label(record.get("provenance") or {})


# ---------------------------------------------------------------- the course's own records, as a submission

def course_submission(week: str, files: list[tuple[str, Path]], when: str | None = None) -> dict:
    """The course's records of `week` (the files its frozen page showed) as a submission labelled the course's."""
    records = read_records(files)
    if not records:
        raise ValueError(f"the course has no records of {week} to submit (render its page first)")
    latest = max((r.get("provenance") or {}).get("date") or "" for r in records)
    return build(week, COURSE_ALIAS, records, source="course", when=when or latest or None)
