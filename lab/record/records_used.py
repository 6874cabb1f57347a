"""Which measurement records this process has shown: a page's freeze lists them, so that freshness follows a record.

    note("week4/routes", path, record)   # lab.record.store: each record measured() returns, load_all()/every_record() read
    used_records()                       # [{"name": "week4/routes", "hardware": "cpu-intel-...", "sha256": "..."}]

Quarto's freeze keys on the page source alone, so a page that shows another page's records went stale unnoticed
when those records were re-measured. lab.site asks the page's kernel for this list after its last cell and writes
it into the freeze entry; `python -m lab check` then compares each sha256 (of the record file's bytes) with the
file in the site's records folder (lab.record.paths.site_records_dir), at `<name>/<hardware>.json`.

An entry also carries the record's `noisy` note (what the harness saw: why, and the load) and `synthetic: true` when
the record has them, so that the check can refuse such a page from its freeze alone.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_used: dict[tuple[str, str], dict] = {}      # (name, hardware) -> entry, in the order first read
_files: dict[tuple[str, str], Path] = {}     # (name, hardware) -> the record file, for lab.record.submission


def note(name: str, path: Path, record: dict) -> None:
    """Remember that this process showed the record stored at `path` (its bytes as they are now)."""
    entry = {"name": name, "hardware": Path(path).stem,
             "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    if record.get("noisy"):
        entry["noisy"] = record["noisy"]
    if record.get("synthetic"):
        entry["synthetic"] = True
    # A record read twice (week 6 shows weeks 2-5) is listed once; a re-measure within the page wins.
    _used[(entry["name"], entry["hardware"])] = entry
    _files[(entry["name"], entry["hardware"])] = Path(path)


def note_file(name: str, path: Path, record: dict, unpublishable: list[str]) -> None:
    """Remember that this process showed a file that lives outside the records folder (the class record,
    lab.record.class_record): its entry names the file relative to the site's root (`file`), for `lab check` to
    compare, and carries why it must not be published (`unpublishable`: a smoke or synthetic submission in it)."""
    from lab.record.paths import site_root
    path = Path(path).resolve()
    root = site_root(path.parent)
    entry = {"name": name, "hardware": path.stem, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
             "file": path.relative_to(root).as_posix() if root else path.name}
    if unpublishable:
        entry["unpublishable"] = list(unpublishable)
    _used[(name, path.stem)] = entry


def used_records() -> list[dict]:
    return list(_used.values())


def used_files() -> list[tuple[str, Path]]:
    """(name, file) of each record this process showed, in the order first read: what a student's submission of
    the notebook holds (lab.record.submission), read again from the file as it is now."""
    return [(name, path) for (name, _), path in _files.items()]


def load_text(loads: list) -> str:
    """'2.1, 1.9', or '2.5 to 3.1 (21 readings)' for more than three: the 1-minute load averages a harness saw."""
    seen = [x for x in loads or [] if isinstance(x, (int, float))]
    if not seen:
        return "not recorded"
    if len(seen) <= 3:
        return ", ".join(f"{x:.1f}" for x in seen)
    return f"{min(seen):.1f} to {max(seen):.1f} ({len(seen)} readings)"


def noisy(record: dict) -> dict | None:
    """The noise mark of a record ({"why", "load"}), wherever lab.record.store keeps it, or None."""
    return record.get("noisy") or (record.get("result") or {}).get("noisy")


def noisy_text(record: dict) -> str:
    """'spread 0.89 of the median; load 2.1, 1.9' for a record (or a used_records entry) marked noisy."""
    mark = noisy(record) or {}
    return f"{mark.get('why', 'no reason given')}; load {load_text(mark.get('load'))}"


def noisy_note(records: list[dict]) -> str:
    """A Quarto warning callout for the records among `records` measured on too busy a machine ('' when none was):
    the page shows their numbers, says why they are not to be trusted, and `lab check` refuses to publish it."""
    marked = [r for r in records if noisy(r)]
    if not marked:
        return ""
    from lab.record import env
    lines = [f"- {r.get('name', 'a record')} on {env.device_label(r['provenance'])}: {noisy_text(r)}" for r in marked]
    return ("::: {.callout-warning}\n## Measured on a busy machine\n\nSome numbers on this page are shown as "
            "measured, but the machine was too busy for them to be trusted (why, below). The next run measures them "
            "again; until then this page cannot be published.\n\n" + "\n".join(lines) + "\n:::\n")


def forget() -> None:
    """Start a new list (tests; a page kernel starts with an empty one)."""
    _used.clear()
    _files.clear()
