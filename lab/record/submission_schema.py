"""A parsed submission (lab.record.untrusted_json.parse) -> a valid, countable submission, or Refused naming the field.

    doc = validate(doc)     # the document unchanged, or Refused naming the first wrong field
    counted(doc)            # Refused when it is marked: smoke, a rehearsal, synthetic

Each document is checked against the schema of its version (lab.record.submission.VERSION; a newer or unknown
version is refused, saying so), every field's type, and every string's length (MAX_STRING). Each refusal is one line
naming the field. Strings are kept as they are; the page escapes each one (lab.display.class_page).
"""
from __future__ import annotations

import datetime as dt
import re

from lab.record import paths
from lab.record.submission import ALIAS, COURSE_ALIAS, SCHEMA, SOURCES, VERSION, WEEKS
from lab.record.untrusted_json import Refused

MAX_RECORDS = 64
MAX_STRING = 20_000          # characters of one string (a record's 1276-character `correct` string fits)
RECORD_NAME = re.compile(r"[a-z0-9][a-z0-9_\-/.]*")


def need(obj, field: str, kind, where: str = "", optional: bool = False):
    """obj[field], checked to be of `kind` (a type or tuple); Refused naming the field otherwise."""
    name = f"{where}{field}"
    if not isinstance(obj, dict) or field not in obj:
        if optional:
            return None
        raise Refused(f"field {name} is missing")
    value = obj[field]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise Refused(f"field {name} is {type(value).__name__}, not {wanted}")
    return value


def check_strings(obj, where: str = "") -> None:
    """Every string (and key) no longer than MAX_STRING characters."""
    if isinstance(obj, str):
        if len(obj) > MAX_STRING:
            raise Refused(f"field {where or 'a string'} is {len(obj):,} characters, over {MAX_STRING:,}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_strings(k, f"{where}.{k}"[:80])
            check_strings(v, f"{where}.{k}"[:200])
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_strings(v, f"{where}[{i}]")


def check_date(value: str, field: str) -> str:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise Refused(f"field {field} is {value[:40]!r}, not an ISO date and time") from None
    return value


def check_version(doc: dict) -> None:
    schema = need(doc, "schema", str)
    if schema != SCHEMA:
        raise Refused(f"field schema is {schema[:60]!r}, not {SCHEMA!r}: not a submission of this course")
    version = need(doc, "version", int)
    if version > VERSION:
        raise Refused(f"field version is {version}, newer than this lab reads ({VERSION}): update lab, then gather "
                      "again")
    if version != VERSION:
        raise Refused(f"field version is {version}, unknown (this lab reads version {VERSION})")


def check_record(rec, at: str) -> None:
    if not isinstance(rec, dict):
        raise Refused(f"field {at} is {type(rec).__name__}, not an object")
    name = need(rec, "name", str, f"{at}.")
    if not RECORD_NAME.fullmatch(name) or ".." in name:
        raise Refused(f"field {at}.name is {name[:60]!r}, not a record name (like 'week1/finetune')")
    need(rec, "result", dict, f"{at}.")
    config = need(rec, "config", dict, f"{at}.")
    profile = need(config, "profile", dict, f"{at}.config.")
    need(profile, "name", str, f"{at}.config.profile.")
    wall = need(rec, "wall_s", (int, float), f"{at}.")
    if wall < 0:
        raise Refused(f"field {at}.wall_s is {wall}, negative: a time is never below 0")
    prov = need(rec, "provenance", dict, f"{at}.")
    p = f"{at}.provenance."
    device = need(prov, "device", str, p)
    if device not in ("cpu", "cuda"):
        raise Refused(f"field {p}device is {device[:40]!r}, not 'cpu' or 'cuda'")
    for field in ("cpu", "platform", "python", "date"):
        need(prov, field, str, p)
    check_date(prov["date"], f"{p}date")
    count = need(prov, "cpu_count", (int, type(None)), p)
    if count is not None and count < 1:
        raise Refused(f"field {p}cpu_count is {count}: a machine has at least one core")
    need(prov, "lab", (str, type(None)), p, optional=True)
    gpu = need(prov, "gpu", (dict, type(None)), p)
    if gpu is not None:
        need(gpu, "name", str, f"{p}gpu.")
    libraries = need(prov, "libraries", dict, p)
    for lib, version in libraries.items():
        if version is not None and not isinstance(version, str):
            raise Refused(f"field {p}libraries.{lib[:40]} is {type(version).__name__}, not a version string")
    need(rec, "noisy", (dict, type(None)), f"{at}.", optional=True)
    need(rec, "synthetic", bool, f"{at}.", optional=True)


def validate(doc: dict) -> dict:
    """The document, checked (Refused naming the first wrong field); returns it unchanged."""
    check_version(doc)
    week = need(doc, "week", str)
    if week not in WEEKS:
        raise Refused(f"field week is {week[:40]!r}, not one of {', '.join(WEEKS)}")
    source = need(doc, "source", str)
    if source not in SOURCES:
        raise Refused(f"field source is {source[:40]!r}, not one of {', '.join(SOURCES)}")
    alias = need(doc, "alias", str)
    if source == "course" and alias != COURSE_ALIAS or source == "student" and (
            not ALIAS.fullmatch(alias) or alias == COURSE_ALIAS):
        raise Refused(f"field alias is {alias[:60]!r}: lowercase letters, digits and '-', at most 32 "
                      f"({COURSE_ALIAS!r} is the course's own)")
    check_date(need(doc, "submitted", str), "submitted")
    for field in ("profiles", "marks", "noisy"):
        for i, item in enumerate(need(doc, field, list)):
            if not isinstance(item, str):
                raise Refused(f"field {field}[{i}] is {type(item).__name__}, not a string")
    records = need(doc, "records", list)
    if not 1 <= len(records) <= MAX_RECORDS:
        raise Refused(f"field records holds {len(records)} records, not 1 to {MAX_RECORDS}")
    for i, rec in enumerate(records):
        check_record(rec, f"records[{i}]")
    check_strings(doc)
    return doc


def counted(doc: dict) -> None:
    """Refused when the submission is marked, or its records are: smoke, a rehearsal, synthetic."""
    if doc["marks"]:
        raise Refused(f"is marked, never counted: {'; '.join(doc['marks'])[:200]}")
    for i, rec in enumerate(doc["records"]):
        profile = rec["config"]["profile"]["name"]
        if profile in paths.UNPUBLISHABLE:
            raise Refused(f"field records[{i}].config.profile.name is {profile!r}: a tiny or random-init model, "
                          "never counted")
        if rec.get("synthetic"):
            raise Refused(f"field records[{i}].synthetic is true: a test's fake record, never counted")
