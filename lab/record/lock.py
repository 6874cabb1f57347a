"""One process at a time per folder: a run folder, a records folder, a freeze root.

    with lock.hold(run_folder, "training"):                  # waits, saying who holds it
        ...
    with lock.hold(freeze_root, "rendering", wait=False):     # or fails at once with lock.Busy naming the holder
        ...

The lock is `fcntl.flock` on `<folder>/.lab.lock`. The operating system releases it when the holder's process ends,
however it ends (SIGKILL included), so a crash never leaves a folder locked and there is nothing stale to delete.
The file records who holds it (pid, host, what for, the page or command, since when), so a second run can say
whom it waits for. Within one process a hold is re-entrant: holding a folder this process already holds does
nothing, so nested code may take the lock again. Different folders are always taken in one order (records
folder, then run folder) so two processes cannot wait for each other.

Locks are advisory: they order the runs of this package, not other programs. On a system without fcntl (Windows),
and on a folder this process cannot write to (so will not write into), `hold` does nothing.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
import sys
from pathlib import Path

from lab.record.progress import note   # on the terminal of `make course` too, not only in a cell's output

try:
    import fcntl
except ImportError:              # Windows: no flock; the course runs on Linux and macOS
    fcntl = None

LOCK_FILE = ".lab.lock"
_held: set[str] = set()         # lock files this process holds


class Busy(RuntimeError):
    """Another process holds the lock; the message names it and says what to do."""


def _info(folder) -> dict:
    try:
        info = json.loads((Path(folder) / LOCK_FILE).read_text())
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}                # the holder has not written its name yet


def holder(folder) -> str:
    """Who holds (or last held) the folder's lock, in words, from its lock file."""
    info = _info(folder)
    if not info:
        return "another process (it has not written its name yet)"
    what = info.get("page") or info.get("command") or "?"
    return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose')}: {what}), "
            f"since {info.get('since')}")


def _me(purpose: str) -> str:
    return json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
        "page": os.environ.get("LAB_PAGE"), "command": " ".join([os.path.basename(sys.executable), *sys.argv])[:300],
        "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    })


@contextlib.contextmanager
def hold(folder, purpose: str, wait: bool = True):
    """Hold `folder`'s lock for the block. wait=True blocks until it is free (printing once whom it waits for);
    wait=False raises Busy at once."""
    folder = Path(folder)
    key = str((folder / LOCK_FILE).resolve())
    if fcntl is None or key in _held:      # no flock here; or already ours (an outer block holds it)
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(key, "a+")      # "a+": never truncates what the holder wrote while we only wait
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        f = None                 # a folder we cannot write to: this process will not write into it either
    if f is None:
        yield
        return
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(folder)
            if not wait:
                raise Busy(f"{folder} is in use by {who}. Wait for that run to finish, or stop it "
                           f"(kill {_info(folder).get('pid', 'PID')}), then try again.") from None
            note(f"[lab] waiting for {folder}: in use by {who} (Ctrl-C stops waiting)")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(_me(purpose) + "\n")
        f.flush()
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        f.close()                # closing the file releases the flock

