"""Temporary files and folders that say whose they are, so a later run clears what a killed run left, and only that.

    tmp = folder / scratch.owned_name("step-000004")   # '.step-000004.12345@myhost-1a2b3c4d.tmp'
    scratch.sweep(folder, ".step-*")                   # delete the leftovers of writers that are dead
    with scratch.directory("checks") as tmp: ...       # $TMPDIR/lab-checks-<uid>-<pid>@<host>-<random>, private

A temporary name carries its writer's pid and host. A cleanup deletes a leftover only when its writer is a dead
process on this host, so one run's cleanup never deletes another live run's write in progress (two runs that
share a folder used to do exactly that). Scratch folders in the shared temp folder are per user and 0700 (a
Jupyter connection file in one holds the kernel's HMAC key); each new one first removes this user's scratch
folders whose owner died, so a kill leaves nothing that the next run does not clean.

`python(code)` starts a helper process (the crash test's trainer, the reload checks) that imports this lab and
ends when the process that started it ends (`die_with_parent`), instead of running on after a kill. It runs in a
session of its own, so a Ctrl-C meant for its parent (a terminal's, or the one lab.site passes to a page's kernel
group) does not reach it: it would die printing a KeyboardInterrupt traceback on the terminal. The parent decides
instead: an exception while it waits for the helper, or leaving a `with` block around it, kills it (`Helper`).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# '<pid>@<host>-<8 hex>', then maybe a suffix ('.tmp', '.old'), at the end of a name
_OWNER = re.compile(r"(?P<pid>\d+)@(?P<host>[A-Za-z0-9]+)-[0-9a-f]{8}(?:\.[a-z]+)?$")


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def host() -> str:
    """This machine's name, letters and digits only (it goes into file names)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"


def owner_tag() -> str:
    """'<pid>@<host>-<8 random hex>': unique per call, and says which process wrote the file."""
    return f"{os.getpid()}@{host()}-{secrets.token_hex(4)}"


def owned_name(stem: str, suffix: str = ".tmp") -> str:
    """A hidden temporary name for `stem` in the same folder: '.<stem>.<owner tag><suffix>'."""
    return f".{stem}.{owner_tag()}{suffix}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)               # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                   # it exists, and belongs to someone else
    try:                              # a zombie (dead, not yet reaped: common in containers) is dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def orphaned(name: str) -> bool:
    """True when the name carries an owner tag whose process is dead on this host. Names without a tag, and
    leftovers of other hosts (a shared network folder), are never judged dead: we cannot know."""
    m = _OWNER.search(name)
    return bool(m) and m["host"] == host() and not alive(int(m["pid"]))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(folder, pattern: str) -> list[Path]:
    """Delete the entries of `folder` matching the glob `pattern` whose writer is dead; returns them."""
    folder = Path(folder)
    gone = [p for p in (folder.glob(pattern) if folder.is_dir() else []) if orphaned(p.name)]
    for p in gone:
        _remove(p)
    return gone


def sweep_temp() -> list[Path]:
    """Delete this user's scratch folders (lab-*) in the temp folder whose owner is dead."""
    gone = []
    for p in Path(tempfile.gettempdir()).glob(f"lab-*-{_uid()}-*@*"):
        with contextlib.suppress(OSError):
            if p.stat().st_uid == _uid() and orphaned(p.name):
                _remove(p)
                gone.append(p)
    return gone


# ---------------------------------------------------------------- replacing a folder

def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import errno
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)      # glibc 2.28+
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):                # file system or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: Path, target: Path) -> None:
    """Put the folder `new` at `target`, replacing the folder there, so that at every instant `target` is either
    the whole old folder or the whole new one, or (without an atomic exchange) the old one is aside, complete.

    Linux: one atomic exchange, then the old folder (now at `new`) is deleted. Elsewhere: the old folder is renamed
    aside ('.<name>.<owner>.old'), then `new` into place; a kill between the two renames leaves it aside, and the
    next `restore_aside` puts it back."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)
        return
    aside = target.parent / owned_name(target.name, ".old")
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)            # put the previous folder back
        raise
    shutil.rmtree(aside, ignore_errors=True)


def restore_aside(folder) -> list[Path]:
    """Leftovers of a killed replace_dir in `folder`: an old folder set aside goes back to its place when that is
    empty (else it is deleted), and a dead writer's half-built '.tmp' is deleted. Returns the paths acted on."""
    folder = Path(folder)
    acted = []
    for aside in sorted(folder.glob(".*.old")) if folder.is_dir() else []:
        if orphaned(aside.name):
            place = folder / aside.name[1:].rsplit(".", 2)[0]           # '.<name>.<owner>.old' -> <name>
            if place.exists():
                _remove(aside)
            else:
                os.rename(aside, place)
            acted.append(aside)
    return acted + sweep(folder, ".*.tmp")


# ---------------------------------------------------------------- scratch folders and helper processes

@contextlib.contextmanager
def directory(purpose: str):
    """A private folder in the temp folder for this process, removed on exit (a kill leaves it to the next run)."""
    sweep_temp()
    path = Path(tempfile.gettempdir()) / f"lab-{purpose}-{_uid()}-{owner_tag()}"
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a helper process: it is killed when `parent_pid` (the process that started it) ends.

    Linux: the kernel does it (prctl PR_SET_PDEATHSIG), at once. Elsewhere a daemon thread checks every 0.5 s."""
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)    # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        else:
            if os.getppid() != parent_pid:      # the parent died before the prctl took effect
                os._exit(1)
            return

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


class Helper(subprocess.Popen):
    """A helper process (`python`): killed, with anything it started, when an exception (a Ctrl-C's
    KeyboardInterrupt) interrupts `wait()`, and when a `with` block around it is left, so an interrupted parent
    leaves no helper running and none that prints."""

    def wait(self, timeout=None):
        try:
            return super().wait(timeout)
        except subprocess.TimeoutExpired:
            raise
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill it (SIGKILL to its session's process group) unless it has ended, and reap it."""
        if self.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL) if hasattr(os, "killpg") else self.kill()
        except OSError:
            with contextlib.suppress(OSError):
                self.kill()
        subprocess.Popen.wait(self)

    def __exit__(self, exc_type, value, traceback):
        self.stop()
        return super().__exit__(exc_type, value, traceback)


def python(code: str, *args: str, **kwargs) -> Helper:
    """A fresh interpreter running `code` that imports this lab (the checkout's, whether or not it is installed)
    and dies with this process: a killed kernel must not leave a trainer running. It runs in its own session
    (a Ctrl-C of its parent's process group does not reach it); use it in a `with` block, or wait() for it, so an
    interrupted parent kills it (Helper)."""
    from lab.record import paths
    path = os.pathsep.join([str(paths.package_parent()), os.environ.get("PYTHONPATH", "")])
    code = f"from lab.record import scratch; scratch.die_with_parent({os.getpid()})\n{code}"
    return Helper([sys.executable, "-c", code, *args], env={**os.environ, "PYTHONPATH": path}, text=True,
                  start_new_session=os.name == "posix", **kwargs)
