"""Bytes from a stranger -> data: a file read as JSON data only, or Refused saying what it is instead.

    doc = parse(read_capped(path))     # a dict, or Refused (one line)

A submission comes from a student's machine through an LMS: any bytes at all. Each file is
- opened without following a link, refused unless a regular file, and size-capped (CAP_BYTES) twice: by stat
  before reading (a sparse file of terabytes is never read) and by reading at most CAP_BYTES + 1 bytes;
- read as data only: a pickle (or any binary) is named and refused, never unpickled; the text is nested at most
  MAX_DEPTH deep, counted before json parses it; NaN, Infinity, a number that overflows, a duplicate key are refused.

What the data must hold is lab.record.submission_schema's; the class record is lab.record.class_record's.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path

CAP_BYTES = 4_000_000        # a week 6 submission (weeks 2 to 6's records) is ~0.3 MB; 4 MB leaves room, no more
MAX_DEPTH = 24               # a record nests ~8 deep (week4/routes: result.routes[].placement.by_op.<op>.<provider>)


class Refused(ValueError):
    """Why a submission is refused, in one line (naming the field where one is to blame)."""


def read_capped(path: Path, cap: int = CAP_BYTES) -> bytes:
    """The file's bytes, at most `cap`; Refused for a link, a device, a folder, or a file over the cap."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise Refused(f"cannot be opened ({'a link, never followed' if os.path.islink(path) else e.strerror})")
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("is not a regular file")
        if info.st_size > cap:
            raise Refused(f"is {info.st_size:,} bytes, over the cap of {cap:,} (never read)")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise Refused(f"grew past the cap of {cap:,} bytes while being read")
    return data


def nesting(text: str) -> int:
    """How deep the JSON text's arrays and objects nest, brackets inside strings not counted."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", re.sub(r'"(?:[^"\\]|\\.)*"', "", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def no_constant(name: str):
    raise ValueError(f"{name} is not a number a measurement can have")


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


def unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def parse(data: bytes) -> dict:
    """JSON data -> a dict, or Refused saying what the bytes are instead."""
    if data[:1] == b"\x80" or (data[:1] in (b"(", b"c") and data.rstrip().endswith(b".")):   # protocol 2+, or 0
        raise Refused("is a pickle, not JSON (never unpickled)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Refused(f"is not UTF-8 text (byte {e.start}); a submission is a JSON file") from None
    if "\x00" in text:
        raise Refused("holds a NUL byte: binary data, not JSON")
    if (depth := nesting(text)) > MAX_DEPTH:
        raise Refused(f"nests {depth} deep, over the limit of {MAX_DEPTH} (never parsed)")
    try:
        doc = json.loads(text, parse_constant=no_constant, parse_float=finite_float, object_pairs_hook=unique_keys)
    except ValueError as e:        # JSONDecodeError too
        raise Refused(f"is not valid JSON ({str(e)[:120]})") from None
    if not isinstance(doc, dict):
        raise Refused(f"is a JSON {type(doc).__name__}, not a submission object")
    return doc
