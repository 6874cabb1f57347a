"""Progress for the person waiting: in the notebook they run, or on the terminal of `make course`, never in a page.

    with progress.bar(total_steps, unit="step") as bar:      # lab.train's loop
        bar.update(1); bar.set_postfix(loss="0.412")
    progress.note("[lab] week1/finetune: measuring on CPU")  # a status line, shown the same way

Where it goes:
- In a student's notebook (Jupyter, Kaggle, Colab): the cell's output, as a widget bar where ipywidgets is
  installed and as a text bar otherwise.
- Under `lab.site` (`make course`, `python -m lab render`): the pages are executed in a Jupyter kernel whose
  every output, even a write to file descriptor 2, lands in the frozen page. So the executor gives the kernel a
  side channel, a file named by $LAB_PROGRESS_FILE, and `relay()` copies what the kernel writes there to the
  terminal while the page runs. The page's outputs stay clean.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from pathlib import Path

CHANNEL_ENV = "LAB_PROGRESS_FILE"


def _channel():
    """The side channel to the executor's terminal, opened for appending, or None outside lab.site."""
    path = os.environ.get(CHANNEL_ENV)
    return open(path, "a", buffering=1, encoding="utf-8") if path else None


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def note(message: str) -> None:
    """A status line: printed (the cell's output), and on the executor's terminal when there is one."""
    print(message, flush=True)
    channel = _channel()
    if channel is not None:
        with channel:
            channel.write(f"{os.environ.get('LAB_PAGE', '')}: {message}\n" if os.environ.get("LAB_PAGE")
                          else message + "\n")


@contextlib.contextmanager
def bar(total: int, *, initial: int = 0, desc: str | None = None, unit: str = "step", enabled: bool = True):
    """A tqdm bar on the right screen (see the module docstring); a disabled bar when `enabled` is False."""
    channel = _channel() if enabled else None
    if channel is not None:
        from tqdm.std import tqdm
        # a file is no terminal: fixed width, and an update every second is plenty for a relay
        made = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=channel, ncols=100, mininterval=1.0)
    elif enabled and _in_notebook() and _has_widgets():
        from tqdm.notebook import tqdm
        made = tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=1.0)
    else:
        from tqdm.std import tqdm
        made = tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, mininterval=2.0,
                    dynamic_ncols=True)
    try:
        yield made
    finally:
        made.close()
        if channel is not None:
            channel.close()


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------- the executor's side

class relay:
    """Copy what a kernel writes to the side channel `path` to `out` (the terminal) while the block runs.

    On a terminal the text passes through unchanged, so a bar redraws in place. Into a log file (CI) each bar
    redraw would be a line, so there a bar's state is written at most every `log_every_s` seconds, and finished
    lines always."""

    def __init__(self, path: Path, out=None, log_every_s: float = 30.0, poll_s: float = 0.25):
        self.path, self.out = Path(path), out or sys.stderr
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.log_every_s, self.poll_s = log_every_s, poll_s
        self._stop, self._pending, self._last = threading.Event(), "", float("-inf")

    def __enter__(self):
        self.path.touch()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._feed("", final=True)
        return False

    def _pump(self) -> None:
        with open(self.path, encoding="utf-8", errors="replace", newline="") as f:   # keep tqdm's \r
            while True:
                stopping = self._stop.is_set()
                text = f.read()
                if text:
                    self._feed(text)
                if stopping:
                    return
                time.sleep(self.poll_s)

    def _feed(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.out.write(text)
            self.out.flush()
            return
        self._pending += text
        *done, self._pending = re.split(r"(?<=[\r\n])", self._pending)
        for piece in done:
            line = piece.rstrip("\r\n").strip()
            if line and (piece.endswith("\n") or time.monotonic() - self._last >= self.log_every_s):
                self._emit(line)
        if final and self._pending.strip():
            self._emit(self._pending.strip())

    def _emit(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        self._last = time.monotonic()
