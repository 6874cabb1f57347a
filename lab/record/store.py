"""The measurement record: run a measurement once, keep it with its provenance, reuse it until it goes stale.

    record = measured("week1/finetune", finetune_fn, profile=profile, lr=2e-4)
    record["result"]      # plain JSON: numbers and small tables
    record["provenance"]  # hardware, library versions, git commit, date (lab.record.env)

A record is one JSON file, `<records dir>/<name>/<hardware key>.json`, so the same measurement taken on a laptop
CPU and on a T4 lives side by side and a page can show both, each labelled. It is stale when the config differs
or when the code that produced it changed: the fingerprint (lab.record.fingerprint) covers the measuring function's
recipe and the library modules it imports, transitively, never the record machinery, display or site. A stale or missing record is re-measured;
`LAB_REMEASURE=1` re-measures every record once per run (see remeasure_since). A record that cannot be read (truncated, not JSON, not a record) is
reported with its path and re-measured. Writes are atomic (temp file + rename), so a kill mid-write leaves the
previous record intact; a measurement holds its records folder's lock (lab.record.lock), so two processes never measure
into one folder at once, and the second one then finds the first one's record.

A measuring function that found the machine too busy to trust its numbers says so in its result,
`result["noisy"] = {"why": ..., "load": [...]}`; the record carries it as `record["noisy"]`. Such a record is reused
only by the run that measured it (a later page of the same `lab course`), and re-measured by the next run.
Every record measured() returns or load_all() and every_record() read is noted in lab.record.records_used, for the page's freeze.

Smoke-profile runs never touch the committed record: they go to `$LAB_RECORDS`, else a per-user temp folder.
Where a pip-installed lab keeps its records (no checkout): lab.record.paths.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Callable

from lab.record import env, lock, paths, records_used, scratch
from lab.record.fingerprint import code_of, fingerprint, module_hashes
from lab.record.records_used import noisy_text
from lab.record.progress import note   # also on the terminal of `make course`, not only in the cell


def records_dir(profile_name: str | None = None) -> Path:
    """Where records live (lab.record.paths): the checkout's course/measurements, ./lab-output/measurements when lab is
    pip-installed, a per-user temp folder for the smoke profile; $LAB_RECORDS overrides."""
    return paths.records_dir(profile_name)


def hardware_key(device: str = "cpu", prov: dict | None = None) -> str:
    """'cpu-amd-epyc-7b13-2c' or 'cuda-nvidia-h200': names the file a record lives in."""
    prov = prov or env.provenance(device)
    if device == "cuda" and prov.get("gpu"):
        name = prov["gpu"]["name"]
    else:
        name = f"{prov['cpu']}-{prov['cpu_count']}c"
    return f"{'cuda' if device == 'cuda' else 'cpu'}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ---------------------------------------------------------------- records

def _canonical(obj) -> object:
    """JSON round trip: what is stored is exactly what a later read returns (tuples become lists, etc.)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def record_path(name: str, key: str, profile_name: str | None = None) -> Path:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-/.]*", name) or ".." in name:
        raise ValueError(f"record name {name!r}: use lowercase letters, digits, - _ . and / (e.g. 'week1/finetune')")
    return records_dir(profile_name) / name / f"{key}.json"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch.sweep(path.parent, f".{path.name}.*.tmp")        # what a killed writer left
    tmp = path.parent / scratch.owned_name(path.name)       # names its writer: no other run's sweep deletes it
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)   # a record is meant to be read by everyone
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)      # atomic on POSIX: readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Unreadable(ValueError):
    """A record file that exists but is not a record: `path`, and `reason` in words."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path} {reason}")
        self.path, self.reason = path, reason


def read(path: Path) -> dict | None:
    """The record stored at `path`; None when there is none. Raises Unreadable for a truncated or foreign file."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:       # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Unreadable(path, f"cannot be read ({type(e).__name__}: {e})") from None
    missing = [k for k in ("result", "config", "provenance") if not isinstance(record, dict) or k not in record]
    if missing:
        raise Unreadable(path, f"is not a measurement record (it has no {', '.join(missing)})")
    return record


def staleness(record: dict, config: dict | None = None, code: dict | None = None, profiles: dict | None = None
              ) -> list[str]:
    """Why a record no longer matches: [] when fresh. `code` is code_of(fn) at call time; without it (the status
    command) the fingerprint is recomputed from the stored module list, which a notebook-defined function lacks."""
    why = []
    stored = record.get("code", {})
    if code is None and stored.get("modules"):
        code = {"modules": stored["modules"], "fingerprint": fingerprint(stored["modules"])}
    if code is not None and code["fingerprint"] != stored.get("fingerprint"):
        old_h, new_h = stored.get("hashes") or {}, module_hashes(stored.get("modules") or [])
        changed = [m for m in stored.get("modules") or [] if old_h.get(m) != new_h.get(m)]
        why.append(f"code changed in {', '.join(changed or ['the measuring function'])}")
    if config is not None and _canonical(config) != record.get("config"):
        old, new = record.get("config") or {}, _canonical(config)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        why.append(f"config changed: {', '.join(changed)}")
    elif config is None and profiles:
        # From the command line we cannot rebuild the call's config, but we can see whether the profile it used
        # (`profiles`: lab.config.PROFILES, passed in: the record machinery imports no library) was edited since.
        stored = (record.get("config") or {}).get("profile")
        if isinstance(stored, dict) and stored.get("name") in profiles:
            if _canonical(profiles[stored["name"]].to_dict()) != stored:
                why.append(f"profile {stored['name']!r} changed")
    return why


# LAB_REMEASURE=1 re-measures each record once per run, not once per call: week 6 reads weeks 2-5's records, and
# must not train them all again. A run starts when lab is first imported; the page kernels of `lab course` inherit
# the parent's start through this variable, so a record measured by an earlier page of the same run is kept.
os.environ.setdefault("LAB_REMEASURE_SINCE", repr(time.time()))


def remeasure_since() -> float:
    """Under LAB_REMEASURE=1, records written before this time (seconds since the epoch) are re-measured."""
    try:
        return float(os.environ["LAB_REMEASURE_SINCE"])
    except (KeyError, ValueError):
        return float("inf")


def measured(name: str, fn: Callable[..., dict], *, profile=None, device: str = "cpu", **config) -> dict:
    """fn(**config) -> plain-JSON dict, or the stored record of an earlier identical run on this hardware.

    `profile` (a lab.config.Profile) is passed to fn as `profile=` and recorded in the config.
    `device` is where fn runs ('cpu' or 'cuda'): it picks the record file, so CPU and GPU records coexist.
    """
    full_config = dict(config)
    if profile is not None:
        full_config["profile"] = profile.to_dict()
    prov = env.provenance(device)
    profile_name = profile.name if profile is not None else None
    path = record_path(name, hardware_key(device, prov), profile_name)
    code = code_of(fn)
    # Read, measure and write under the folder's lock: a second process waits, then finds this one's record.
    with lock.hold(records_dir(profile_name), f"measuring {name}"):
        remeasure = os.environ.get("LAB_REMEASURE") == "1"
        try:
            stored = read(path)
        except Unreadable as e:
            note(f"[lab] {name}: the stored record {e}; re-measuring, and the new record replaces it")
            stored = None
        this_run = stored is not None and path.stat().st_mtime >= remeasure_since()
        if stored is None:
            note(f"[lab] {name}: measuring on {env.device_label(prov)}")
        elif remeasure and not this_run:
            note(f"[lab] {name}: measuring on {env.device_label(prov)} (LAB_REMEASURE=1)")
        elif stored.get("noisy") and not this_run:
            note(f"[lab] {name}: re-measuring: the stored record was measured noisy ({noisy_text(stored)})")
        elif not (why := staleness(stored, full_config, code)):
            note(f"[lab] {name}: stored record from {stored['provenance']['date']} "
                  f"({env.device_label(stored['provenance'])})")
            if stored.get("noisy"):
                note(f"[lab] {name}: that record is noisy ({noisy_text(stored)}): kept for this run only, "
                     "the next run re-measures it")
            records_used.note(name, path, stored)
            return stored
        else:
            note(f"[lab] {name}: re-measuring ({'; '.join(why)})")
        record = _measure(name, fn, path, profile, device, config, full_config, code)
        records_used.note(name, path, record)
        return record


def _measure(name, fn, path, profile, device, config, full_config, code) -> dict:
    kwargs = dict(config)
    if profile is not None:
        kwargs["profile"] = profile
    start = time.perf_counter()
    result = fn(**kwargs)
    wall_s = time.perf_counter() - start
    record = {
        "name": name,
        "config": _canonical(full_config),
        "result": _canonical(result),
        "wall_s": round(wall_s, 3),
        "code": code,
        "provenance": env.provenance(device),   # taken after the run: the date is when it finished
    }
    if isinstance(result, dict) and result.get("noisy"):
        record["noisy"] = record["result"]["noisy"]     # top level: status and check see it without the result
    write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def load_all(name: str, profile_name: str | None = None) -> list[dict]:
    """Every stored record of a measurement, one per hardware, e.g. to show CPU and GPU rows side by side.
    An unreadable one is left out, and said so (it is re-measured when its page runs on its hardware)."""
    folder = records_dir(profile_name) / name
    records = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read(p)
            if record is not None:
                records_used.note(name, p, record)
                records.append(record)
        except Unreadable as e:
            note(f"[lab] leaving out the record {name}/{p.name}: it {e.reason}; its page re-measures it when it "
                 f"runs on {p.stem}")
    return records


def _read_all(folder: Path) -> list[tuple[Path, dict | Unreadable]]:
    """Every record file under the folder, read, or the Unreadable error that says why it cannot be."""
    out = []
    for p in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            out.append((p, read(p)))
        except Unreadable as e:
            out.append((p, e))
    return out


def every_record(profile_name: str | None = None) -> list[dict]:
    """All readable records under the records folder, e.g. for a site-wide provenance panel."""
    folder, records = records_dir(profile_name), []
    for p, rec in _read_all(folder):
        if isinstance(rec, dict):
            records_used.note(p.parent.relative_to(folder).as_posix(), p, rec)
            records.append(rec)
    return records


def status(folder: Path | None = None, profiles: dict | None = None) -> list[dict]:
    """One row per record under the folder: `path`, `record` (None when unreadable), why it is stale ('' when
    fresh; `profiles` as for staleness), why it is not publishable (`mark`: noisy, with the load seen, or synthetic;
    '' when neither), its measurement and its hardware key (the file name: `key`)."""
    folder = folder or records_dir()
    rows = []
    for p, rec in _read_all(folder):
        row = {"measurement": p.parent.relative_to(folder).as_posix(), "key": p.stem, "path": p}
        if isinstance(rec, Unreadable):
            rows.append({**row, "record": None, "stale": f"unreadable: {rec.reason}", "mark": ""})
        elif rec is not None:
            mark = (f"noisy: {noisy_text(rec)}" if rec.get("noisy") else "") or \
                   ("synthetic (a test's, never published)" if rec.get("synthetic") else "")
            rows.append({**row, "record": rec, "stale": "; ".join(staleness(rec, profiles=profiles)), "mark": mark})
    return rows
