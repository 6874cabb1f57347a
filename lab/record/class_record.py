"""The class record: a folder of submissions (lab.record.submission), read as untrusted input, made one JSON file.

    record, table = gather(Path("hand-ins"))     # every file under the folder: accepted, refused, duplicates
    path = write(record, Path("course/class"))   # course/class/class-record.json, and nothing else

Each file is read as data only (lab.record.untrusted_json: size-capped, never unpickled, nesting-limited), checked
against its schema (lab.record.submission_schema: version, every field's type, marks), and here the quantities the
class page reads (a time, a size, an accuracy) are checked finite and in range. Strings go into the class record as
they are, and the page escapes each one (lab.display.class_page).

One bad file never stops the others. A resubmission (same alias, week and source) keeps the later `submitted` and
says which it dropped. The class record holds, per accepted submission, its alias, week, date, profile, the machine
(hardware and library stack from its records' provenance) and the quantities the page shows (quantities()), not the
records themselves; refusals and duplicates are kept with their reasons but without file names (an LMS's download
names files after the student), which only the command's table shows.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lab.record import paths
from lab.record.store import write_atomic
from lab.record.submission_schema import counted, validate
from lab.record.untrusted_json import Refused, parse, read_capped

CLASS_SCHEMA = "ecbs5200-class-record"
CLASS_FILE = "class-record.json"


@dataclass
class Row:
    """One line of the command's final table."""
    file: str
    outcome: str          # "accepted", "refused" or "duplicate"
    reason: str = ""


# ---------------------------------------------------------------- the quantities the class page reads

def number(value, field: str, low: float = 0.0, high: float = math.inf):
    """A quantity the page shows, checked in range; None stays None (the route was not measured there)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(f"field {field} is {type(value).__name__}, not a number")
    if not low <= value <= high:
        raise Refused(f"field {field} is {value}, outside {low:g} to {high:g}")
    return value


def flag(value, field: str):
    if value is not None and not isinstance(value, bool):
        raise Refused(f"field {field} is {type(value).__name__}, not true or false")
    return value


def dig(obj, *keys):
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


HALF_ROUTES = ("pytorch-fp16", "pytorch-bf16")     # the half-precision route: fp16 on a GPU, bf16 on a CPU


def route_quantities(routes, at: str) -> dict:
    """week4/routes: fp32's accuracy, int8's size ratio and accuracy against fp32, the half-precision route's."""
    by_name = {}
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        if isinstance(route, dict) and isinstance(route.get("route"), str) and route.get("status") == "ok":
            by_name[route["route"]] = (i, route)
    out = {}
    for key, name in (("fp32", "pytorch-fp32"), ("int8", "onnx-int8-qint8"), ("torch_int8", "pytorch-int8")):
        if name in by_name:
            i, route = by_name[name]
            out[f"{key}_accuracy"] = number(route.get("accuracy"), f"{at}[{i}].accuracy", 0, 1)
            out[f"{key}_size_ratio"] = number(route.get("size_ratio"), f"{at}[{i}].size_ratio", 1e-9)
            out[f"{key}_size_mb"] = number(route.get("size_mb"), f"{at}[{i}].size_mb")
    half = next((n for n in HALF_ROUTES if n in by_name), None)
    if half:
        i, route = by_name[half]
        out.update(half_route=half, half_accuracy=number(route.get("accuracy"), f"{at}[{i}].accuracy", 0, 1),
                   half_size_ratio=number(route.get("size_ratio"), f"{at}[{i}].size_ratio", 1e-9))
    return out


LATENCY_ROUTES = ("pytorch-fp32", "onnx-int8-qint8", *HALF_ROUTES)


def latency_quantities(rows, at: str) -> dict:
    """latency/variants: the full model's median milliseconds per route and batch size, {route: {"1": ms}}."""
    out: dict = {}
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        if isinstance(row, dict) and row.get("model") == "full" and row.get("route") in LATENCY_ROUTES:
            batch = row.get("batch")
            if isinstance(batch, int) and not isinstance(batch, bool):
                ms = number(row.get("median_ms"), f"{at}[{i}].median_ms", 1e-9)
                out.setdefault(row["route"], {})[str(batch)] = ms
    return out


def quantities(doc: dict) -> dict:
    """What the class page shows of a submission, by record: each record's wall time, and the five checks'
    quantities where the week measures them. Refused when one is out of range (a NaN never gets here)."""
    q: dict = {"wall_s": {}}
    for i, rec in enumerate(doc["records"]):
        name, res, at = rec["name"], rec["result"], f"records[{i}].result"
        if name == "latency/variants" and doc["week"] == "week4":     # week 4's speeds live in the shared record
            q["latency_ms"] = latency_quantities(res.get("rows"), f"{at}.rows")
            continue
        if not name.startswith(f"{doc['week']}/"):      # an earlier week's record the notebook also showed
            continue
        q["wall_s"][name] = rec["wall_s"]
        if name == "week1/finetune":
            proj = res.get("projection") if isinstance(res.get("projection"), dict) else {}
            q["projected_total_s"] = number(proj.get("projected_total_s"), f"{at}.projection.projected_total_s")
            q["budget_s"] = number(proj.get("budget_s"), f"{at}.projection.budget_s", 1)
            q["fits"] = flag(proj.get("fits"), f"{at}.projection.fits")
            gpu = proj.get("gpu")
            q["projected_on"] = gpu if isinstance(gpu, str) else (dig(gpu, "name") if isinstance(dig(gpu, "name"), str)
                                                                  else None)
            q["test_accuracy"] = number(dig(res, "test", "accuracy"), f"{at}.test.accuracy", 0, 1)
        elif name == "week1/checks":
            rows = [r for r in res.get("rows") or [] if isinstance(r, dict)]
            passes = [flag(r.get("pass"), f"{at}.rows[{j}].pass") for j, r in enumerate(rows)]
            reload = [p for r, p in zip(rows, passes) if "reload" in str(r.get("check", ""))]
            q["checks_passed"], q["checks_total"] = sum(p is True for p in passes), len(passes)
            q["bit_identical_reload"] = reload[0] if reload else None
        elif name == "week2/lora":
            q["lora_reload"] = flag(dig(res, "reload", "pass"), f"{at}.reload.pass")
            q["lora_accuracy"] = number(dig(res, "test", "accuracy"), f"{at}.test.accuracy", 0, 1)
        elif name == "week4/routes":
            q.update(route_quantities(res.get("routes"), f"{at}.routes"))
        elif name == "week4/placement":
            q["whole_session_fallback"] = flag(res.get("whole_session_fallback"), f"{at}.whole_session_fallback")
            q["per_node_fallback"] = flag(res.get("per_node_fallback"), f"{at}.per_node_fallback")
            asked = res.get("requested_device")
            q["fallback_asked"] = asked if isinstance(asked, str) else None
    return q


def machine(doc: dict) -> dict:
    """The hardware and library stack of a submission: its records' latest provenance (one session, one machine)."""
    prov = max((r["provenance"] for r in doc["records"]), key=lambda p: p["date"])
    return {"device": prov["device"], "cpu": prov["cpu"], "cpu_count": prov.get("cpu_count"),
            "gpu": dig(prov, "gpu", "name"), "memory_gb": number(prov.get("memory_gb"), "provenance.memory_gb")
            if isinstance(prov.get("memory_gb"), (int, float)) else None,
            "platform": prov["platform"], "python": prov["python"], "lab": prov.get("lab"),
            "libraries": {k: v for k, v in sorted(prov["libraries"].items())}}


def summary(doc: dict) -> dict:
    """What the class record keeps of an accepted submission."""
    return {"alias": doc["alias"], "week": doc["week"], "source": doc["source"], "submitted": doc["submitted"],
            "profiles": doc["profiles"], "noisy": doc["noisy"], "records": [r["name"] for r in doc["records"]],
            "machine": machine(doc), "quantities": quantities(doc)}


def read_submission(path: Path) -> dict:
    """The summary of one submission file; Refused (one line) when it cannot be counted."""
    doc = validate(parse(read_capped(path)))
    counted(doc)
    return summary(doc)


# ---------------------------------------------------------------- a folder -> the class record

def shown_name(path: Path, folder: Path) -> str:
    """A file's name for the terminal table: relative to the folder, odd characters as Python's ascii() writes them."""
    rel = path.relative_to(folder).as_posix()
    return rel if re.fullmatch(r"[\w .,+=@()/-]{1,200}", rel) else ascii(rel)


def submission_files(folder: Path) -> list[Path]:
    """Every entry under the folder but hidden ones and folders, links included (refused when read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions; pass the folder the hand-ins were downloaded to")
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):       # os.walk follows no linked folder
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return found


def gather(folder: Path) -> tuple[dict, list[Row]]:
    """(the class record, the table's rows) of every file under `folder`. One bad file never stops the others."""
    folder = Path(folder)
    rows, accepted = [], {}                # (alias, week, source) -> (summary, its row)
    refused, duplicates = [], []
    for path in submission_files(folder):
        shown = shown_name(path, folder)
        try:
            if path.suffix.lower() != ".json":
                raise Refused(f"is not a .json file ({path.suffix[:12] or 'no suffix'})")
            item = read_submission(path)
        except Refused as e:
            rows.append(Row(shown, "refused", f"{shown} {e}"))
            refused.append({"reason": str(e)})
            continue
        except (OSError, RecursionError, MemoryError) as e:      # the machine's trouble, not the file's
            rows.append(Row(shown, "refused", f"{shown} could not be read ({type(e).__name__})"))
            refused.append({"reason": f"could not be read ({type(e).__name__})"})
            continue
        key = (item["alias"], item["week"], item["source"])
        row = Row(shown, "accepted")
        rows.append(row)
        if key in accepted:
            older, newer = sorted([accepted[key], (item, row)], key=lambda p: (p[0]["submitted"], p[1].file))
            older[1].outcome = "duplicate"
            older[1].reason = (f"{older[1].file} is {item['alias']}'s {item['week']} again: kept the later one, "
                               f"{newer[1].file} ({newer[0]['submitted']}), dropped this one ({older[0]['submitted']})")
            duplicates.append({"alias": item["alias"], "week": item["week"], "kept": newer[0]["submitted"],
                               "dropped": older[0]["submitted"]})
            accepted[key] = newer
        else:
            accepted[key] = (item, row)
    subs = sorted((s for s, _ in accepted.values()), key=lambda s: (s["week"], s["source"] != "course", s["alias"]))
    record = {"schema": CLASS_SCHEMA, "version": 1, "submissions": subs, "refused": refused, "duplicates": duplicates}
    return record, rows


def write(record: dict, out: Path) -> Path:
    """The class record as `out`/class-record.json (atomically); nothing else is written, nowhere else."""
    path = Path(out) / CLASS_FILE
    write_atomic(path, json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def table(rows: list[Row]) -> str:
    """The command's last lines: each file that was refused or dropped, one line each, then the counts."""
    lines = [f"  refused: {r.reason}" for r in rows if r.outcome == "refused"]
    lines += [f"  duplicate: {r.reason}" for r in rows if r.outcome == "duplicate"]
    counts = {k: sum(r.outcome == k for r in rows) for k in ("accepted", "refused", "duplicate")}
    lines.append(f"{counts['accepted']} accepted, {counts['refused']} refused, {counts['duplicate']} duplicate(s) "
                 f"dropped, of {len(rows)} file(s)")
    return "\n".join(lines)


# ---------------------------------------------------------------- reading it back, for the page and the check

def unpublishable(record: dict) -> list[str]:
    """Why a class record must not be published: a submission in it on an unpublishable profile or marked."""
    why = []
    for s in record.get("submissions") or []:
        bad = sorted(set(s.get("profiles") or []) & paths.UNPUBLISHABLE)
        if bad:
            why.append(f"{s.get('alias')}'s {s.get('week')} was run on the {', '.join(bad)} profile")
        if s.get("marks") or s.get("synthetic"):
            why.append(f"{s.get('alias')}'s {s.get('week')} is marked synthetic (a test's fake, not a measurement)")
    return why


def load(path: Path) -> dict | None:
    """The class record at `path` (None when there is none), noted for the page's freeze (records_used.note_file)."""
    from lab.record import records_used
    path = Path(path)
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("schema") != CLASS_SCHEMA:
        raise ValueError(f"{path.name} is not a class record (schema {CLASS_SCHEMA!r}); build it with "
                         "`python -m lab class DIR`")
    records_used.note_file("class", path, record, unpublishable(record))
    return record
