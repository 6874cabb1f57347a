"""Run one parsed page in a fresh Jupyter kernel, the way Quarto's jupyter engine does.

What is reproduced from quarto-cli (src/resources/jupyter/notebook.py and lang/python/setup.py):

- one fresh `python3` kernel per page, started in the page's directory;
- a hidden setup step first (matplotlib figure size 7x5 in, dpi 96, "retina" PNGs, which is
  Quarto's html default) run with store_history=False, so the page's first cell is still In[1];
- code cells run in order without their `#|` option lines; every code cell gets
  execution_count = its position among the page's code cells (also cells not evaluated);
- `eval: false` cells are not run; `error: true` cells may raise (their error is shown);
  any other exception stops the page with PageError;
- inline `{python} expr` expressions of a markdown cell are evaluated when execution reaches
  that markdown cell (after the code cells above it, before the ones below), as
  `user_expressions` of an empty execute request, exactly as Quarto's cell_execute_inline.

The kernel is always the interpreter running this code (sys.executable), so the packages of
the current virtual environment are the ones the page sees, whatever kernelspecs are installed.
It talks over IPC sockets in a private scratch folder (lab.record.scratch) rather than TCP: no other user
of the machine can reach it, ipykernel has no plain-TCP warning to print, and the connection file
(which holds the kernel's HMAC key) goes away with the folder, even after a kill.

Ctrl-C (SIGINT) at any instant ends the page with Interrupted, naming where it stopped (`ctrl_c`). While the
kernel runs a request, Ctrl-C is passed on to it, as Jupyter's interrupt: the page's code stops where it can keep
its work (lab.train finishes the step and saves a checkpoint). Before the kernel is ready, and while it shuts down,
the press is only noted, and the page stops at its next step. Once Ctrl-C was pressed, whatever ends the page (the
cell's KeyboardInterrupt, an error the interrupt caused, an inline expression that failed) is the interrupt, never
a failed page. A second Ctrl-C stops at once.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets import default

from lab.record import scratch
from lab.record.progress import CHANNEL_ENV, relay

from .qmd import Cell, Page

# Quarto's html defaults (fig-width 7, fig-height 5, fig-dpi 96, fig-format retina).
FIG_WIDTH, FIG_HEIGHT, FIG_DPI, FIG_FORMAT = 7, 5, 96, "retina"

# Runs before the page, inside a function so it leaves no names behind in the user namespace.
# IPython 9 dropped IPython.display.set_matplotlib_formats; matplotlib_inline has the same call.
SETUP_CODE = f"""
def __lab_site_setup():
    try:
        import matplotlib.pyplot as plt
        plt.rcParams['figure.figsize'] = ({FIG_WIDTH}, {FIG_HEIGHT})
        plt.rcParams['figure.dpi'] = {FIG_DPI}
        plt.rcParams['savefig.dpi'] = {FIG_DPI}
        try:
            from matplotlib_inline.backend_inline import set_matplotlib_formats
        except ImportError:
            from IPython.display import set_matplotlib_formats
        set_matplotlib_formats('{FIG_FORMAT}')
    except Exception:
        pass
    try:     # transformers' per-load "Loading weights" bars would be frozen as stderr under every model load
        from transformers.utils import logging
        logging.disable_progress_bar()
    except Exception:
        pass
__lab_site_setup()
del __lab_site_setup
"""

# Environment Quarto gives the kernel (notebook.py set_env_vars); pages may read these.
QUARTO_ENV = {
    "QUARTO_FIG_WIDTH": str(FIG_WIDTH),
    "QUARTO_FIG_HEIGHT": str(FIG_HEIGHT),
    "QUARTO_FIG_DPI": str(FIG_DPI * 2 if FIG_FORMAT == "retina" else FIG_DPI),
    "QUARTO_FIG_FORMAT": "png" if FIG_FORMAT == "retina" else FIG_FORMAT,
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PageError(Exception):
    """A page could not be rendered; the message names the page, the cell and the error."""


class Interrupted(PageError):
    """Ctrl-C stopped the page; the message names the page, the cell, and what the page's code said.

    `kept`: the page's previous _freeze entry is untouched (False when the Ctrl-C came between two pages)."""

    def __init__(self, message: str, kept: bool = True):
        super().__init__(message)
        self.kept = kept


# A kernel that got the Ctrl-C stops its cell within seconds (a training step ends, a checkpoint is saved). One that
# does not answer within this long never will: the SIGINT landed while it was reading a request (as it started, say)
# and cost it that request, whose reply the render would wait for until the cell's timeout (an hour); or the page's
# code ignores SIGINT. Then the render is Ctrl-C'd a second time, in its main thread, and stops at once.
KERNEL_GRACE_S = 10.0


class CtrlC:
    """The state of Ctrl-C during a render (see ctrl_c): was it pressed, and which kernel to pass it on to."""

    def __init__(self, presses: list[float] | None = None):
        self.presses: list[float] = presses if presses is not None else []
        self.client: NotebookClient | None = None     # the page's kernel, while it is ready for requests
        self.grace: threading.Timer | None = None     # the second Ctrl-C, should the kernel not answer the first

    def pressed(self) -> bool:
        return bool(self.presses)

    def handle(self, signum, frame):
        self.presses.append(time.monotonic())
        if len(self.presses) > 1:
            raise KeyboardInterrupt
        pgid = getattr(getattr(getattr(self.client, "km", None), "provisioner", None), "pgid", None)
        if pgid:
            with contextlib.suppress(OSError):     # the kernel's process group: the kernel and what it started
                os.killpg(pgid, signal.SIGINT)
            # pthread_kill: to the main thread itself, so that the call it waits in (a zmq poll) is interrupted
            self.grace = threading.Timer(KERNEL_GRACE_S, signal.pthread_kill,
                                         (threading.main_thread().ident, signal.SIGINT))
            self.grace.daemon = True
            self.grace.start()

    @contextlib.contextmanager
    def kernel(self, client: NotebookClient):
        """While the block runs, a Ctrl-C goes on to `client`'s kernel (an idle kernel ignores it)."""
        self.client = client
        try:
            yield
        finally:
            self.client = None
            if self.grace is not None:            # the kernel is gone: nothing left to wait for
                self.grace.cancel()


_active: CtrlC | None = None


@contextlib.contextmanager
def ctrl_c(presses: list[float] | None = None):
    """While the block runs (in the main thread: only it gets signals), the first Ctrl-C is noted, passed on to the
    page's kernel while one is ready (CtrlC.kernel), and the render stops at its next step with Interrupted; the
    second raises KeyboardInterrupt at once. Nested blocks share the outer one's state. Yields the CtrlC.

    `presses`: the presses noted before (python -m lab notes them from its first instant), shared with the caller.
    A Ctrl-C is never raised at the first press because a KeyboardInterrupt raised inside a C++ extension's Python
    callback (torch's import) can abort the process or make it end by SIGINT whatever it returns."""
    global _active
    if _active is not None:
        yield _active
        return
    state = CtrlC(presses)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.signal(signal.SIGINT, state.handle)
    _active = state
    try:
        yield state
    finally:
        _active = None
        signal.signal(signal.SIGINT, previous)


class _ThisPythonSpecs(KernelSpecManager):
    """Resolve every kernel name to an ipykernel of the running interpreter."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (ipykernel)",
            language="python",
            name=kernel_name,
        )


class _KernelManager(AsyncKernelManager):
    @default("kernel_spec_manager")
    def _default_specs(self) -> KernelSpecManager:
        return _ThisPythonSpecs()


def _kernel_manager(folder) -> _KernelManager:
    """A kernel manager whose connection file (and IPC sockets, '<folder>/kernel-ipc-<n>') live in `folder`."""
    connection = os.path.join(folder, "kernel.json")
    # A Unix socket path has at most 107 bytes; under a very long TMPDIR fall back to TCP on localhost.
    transport = "ipc" if os.name == "posix" and len(connection) < 90 else "tcp"
    return _KernelManager(kernel_name="python3", connection_file=connection, transport=transport)


def _asked(module: str, function: str) -> str:
    """An expression the kernel evaluates after the last cell: `module.function()` as JSON, '[]' when the page's
    code never imported the module."""
    return (f"__import__('json').dumps(__import__('sys').modules['{module}'].{function}() "
            f"if '{module}' in __import__('sys').modules else [])")


# Which lab profiles the page's code used (lab.config keeps the list), and which measurement records it showed
# (lab.record.records_used): both go into the freeze entry.
USED_PROFILES = _asked("lab.config", "used_profiles")
USED_RECORDS = _asked("lab.record.records_used", "used_records")
# What the page's claims measured and on which machine (lab.display.student.course_record): the student notebook shows it.
COURSE_RECORD = ("__import__('json').dumps(__import__('lab.display.student').display.student.course_record() "
                 "if 'lab' in __import__('sys').modules else {})")


@dataclass
class ExecutedPage:
    cells: list  # one ExecutedCell per parsed cell
    profiles: list[str]  # the lab profiles the page used (lab.config.used_profiles); [] when none
    records: list[dict] = field(default_factory=list)  # the records it showed (lab.record.records_used); [] when none
    course: dict = field(default_factory=dict)  # the claims' numbers and machine (lab.display.student.course_record)


@dataclass
class ExecutedCell:
    cell: Cell
    execution_count: int | None = None
    outputs: list = field(default_factory=list)  # nbformat output nodes (code cells)
    user_expressions: dict = field(default_factory=dict)  # expr -> mime bundle (markdown cells)


def describe_cell(cell: Cell, number: int) -> str:
    if cell.label:
        return f"cell '{cell.label}'"
    first = next((line.strip() for line in cell.code_lines if line.strip()), "")
    return f"cell {number} (`{first[:60]}`)"


def _error_text(ename: str, evalue: str, traceback: str | list[str]) -> str:
    if isinstance(traceback, list):
        traceback = "\n".join(traceback)
    # nbclient's text starts with the cell source between "-----" rulers; keep what follows.
    traceback = (traceback or "").split("\n------------------\n")[-1]
    tail = [line for line in _ANSI.sub("", traceback or "").splitlines() if line.strip()][-8:]
    return f"{ename}: {evalue}" + ("\n" + "\n".join(tail) if tail else "")


def _first_line(text: str) -> str:
    """An Interrupted message is one line: the first line of what the page's code said."""
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _option(cell: Cell, execute: dict, key: str, fallback):
    return cell.options.get(key, execute.get(key, fallback))


def execute_page(page: Page, execute: dict, env: dict | None = None, timeout: int = 3600,
                 progress=None) -> ExecutedPage:
    """Run the page; returns one ExecutedCell per parsed cell (raw cells untouched) and the profiles it used.

    `execute` holds the page's execute options (project `execute:` merged with the page's).
    `progress(cell_number)` is called after each code cell. Ctrl-C at any instant raises Interrupted."""
    with ctrl_c() as ctrl:
        step = ["the page as its kernel started, before its first cell"]     # where a Ctrl-C would stop it
        try:
            executed = _execute(page, execute, env, timeout, progress, ctrl, step)
        except Interrupted:
            raise
        except (Exception, KeyboardInterrupt) as e:
            if not ctrl.pressed():
                raise
            cause = ("" if isinstance(e, (KeyboardInterrupt, PageError))
                     else f" ({type(e).__name__}: {_first_line(str(e))})")
            raise Interrupted(f"{page.rel}: Ctrl-C stopped {step[0]}{cause}") from None
        if ctrl.pressed():            # during the kernel's shutdown
            raise Interrupted(f"{page.rel}: Ctrl-C stopped the page after its last cell")
        return executed


def _execute(page: Page, execute: dict, env, timeout, progress, ctrl: CtrlC, step: list) -> ExecutedPage:
    code = [c for c in page.cells if c.kind == "code"]
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    setup = nbformat.v4.new_code_cell(SETUP_CODE)
    nb.cells = [setup] + [nbformat.v4.new_code_cell(c.source) for c in code]
    # LAB_PAGE tells the page's own code which page it is (lab.display.claims names it in a broken claim's message).
    # LAB_PROGRESS_FILE is the side channel for progress bars: whatever the kernel writes to stdout/stderr, even
    # to fd 2, becomes a cell output and would be frozen, so lab.record.progress writes there and we relay it.
    # Both it and the kernel's connection file live in one private scratch folder that a kill leaves to the next run.
    results: list[ExecutedCell] = []
    number = 0

    def stop_if_pressed(where: str) -> None:
        if ctrl.pressed():
            raise Interrupted(f"{page.rel}: Ctrl-C stopped {where}")

    with scratch.directory("page") as folder:
        channel = folder / "progress.txt"
        kernel_env = {**os.environ, **QUARTO_ENV, "LAB_PAGE": page.rel, CHANNEL_ENV: str(channel), **(env or {})}
        client = NotebookClient(
            nb,
            km=_kernel_manager(folder),
            timeout=timeout,
            allow_errors=bool(execute.get("error", False)),
            record_timing=False,
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(page.path.parent)}},
        )
        with relay(channel), client.setup_kernel(env=kernel_env, cleanup_kc=True), ctrl.kernel(client):
            stop_if_pressed(step[0])
            step[0] = "the page in its setup step, before its first cell"
            _run_setup(client, page, setup, ctrl)
            stop_if_pressed(step[0])
            for cell in page.cells:
                done = ExecutedCell(cell)
                results.append(done)
                if cell.kind == "markdown":
                    expressions = cell.inline_expressions()
                    if expressions:
                        step[0] = (f"the inline expressions after code cell {number} "
                                   f"(`{{python}} {expressions[0][:60]}`{', ...' if len(expressions) > 1 else ''})")
                        done.user_expressions = _inline(client, page, cell, expressions)
                elif cell.kind == "code":
                    number += 1
                    done.execution_count = number
                    step[0] = describe_cell(cell, number)
                    if _option(cell, execute, "eval", True):
                        done.outputs = _run_code(client, page, cell, number, execute, ctrl.pressed)
                    if progress:
                        progress(number)
                # the cell may have shown the KeyboardInterrupt (error: true) and gone on
                stop_if_pressed(f"the page after code cell {number}")
            step[0] = "the page after its last cell"
            profiles, records = _ask(client, USED_PROFILES, []), _ask(client, USED_RECORDS, [])
            course = _ask(client, COURSE_RECORD, {})
            stop_if_pressed(step[0])
    return ExecutedPage(results, profiles, records, course)


def _run_setup(client: NotebookClient, page: Page, setup, ctrl: CtrlC) -> None:
    """Quarto's hidden setup step (SETUP_CODE), before the page's first cell."""
    try:
        client.execute_cell(setup, 0, store_history=False)
    except CellExecutionError as e:
        if ctrl.pressed():
            raise Interrupted(f"{page.rel}: Ctrl-C stopped the page in its setup step, before its first cell") \
                from None
        raise PageError(f"{page.rel}: the setup step raised {_error_text(e.ename, e.evalue, e.traceback)}") from None


def _ask(client: NotebookClient, expression: str, empty):
    """The value of a JSON-text expression in the kernel (USED_PROFILES, USED_RECORDS, COURSE_RECORD), of the type
    of `empty`; `empty` when it cannot be had."""
    reply = client.wait_for_reply(client.kc.execute("", silent=True, store_history=False,
                                                    user_expressions={"p": expression}))
    result = ((reply or {}).get("content", {}).get("user_expressions") or {}).get("p", {})
    try:       # text/plain is the repr of the JSON text
        return type(empty)(json.loads(ast.literal_eval(result["data"]["text/plain"])))
    except (KeyError, ValueError, SyntaxError, TypeError):
        return empty


def _run_code(client: NotebookClient, page: Page, cell: Cell, number: int, execute: dict, pressed) -> list:
    # The kernel gets the code without the option lines, as Quarto sends it (cell magics work).
    nb_cell = nbformat.v4.new_code_cell("\n".join(cell.code_lines))
    if _option(cell, execute, "error", False):
        nb_cell.metadata["tags"] = ["raises-exception"]
    started = time.monotonic()
    try:
        client.execute_cell(nb_cell, number, execution_count=number, store_history=True)
    except CellExecutionError as e:
        if pressed():         # the KeyboardInterrupt, or what the interrupt made the cell's code raise
            said = _first_line(e.evalue if e.ename == "KeyboardInterrupt" else f"it raised {e.ename}: {e.evalue}")
            raise Interrupted(f"{page.rel}: Ctrl-C stopped {describe_cell(cell, number)}"
                              + (f": {said}" if said else "")) from None
        raise PageError(f"{page.rel}: {describe_cell(cell, number)} raised "
                        f"{_error_text(e.ename, e.evalue, e.traceback)}") from None
    except CellTimeoutError:
        raise PageError(f"{page.rel}: {describe_cell(cell, number)} timed out after "
                        f"{time.monotonic() - started:.0f} s") from None
    except DeadKernelError as e:
        raise PageError(f"{page.rel}: kernel died while running {describe_cell(cell, number)}: {e}") from None
    return list(nb_cell.outputs)


def _inline(client: NotebookClient, page: Page, cell: Cell, expressions: list[str]) -> dict:
    """The values of the markdown cell's inline expressions. A failure raises PageError (execute_page turns it into
    Interrupted when Ctrl-C made the expression fail)."""
    request = {str(i): expr for i, expr in enumerate(expressions)}
    msg_id = client.kc.execute("", user_expressions=request)
    reply = client.wait_for_reply(msg_id)
    content = (reply or {}).get("content", {})
    if content.get("status") != "ok":
        raise PageError(f"{page.rel}: inline expressions {expressions!r} failed: "
                        f"{content.get('ename')}: {content.get('evalue')}")
    results = {}
    for key, expr in request.items():
        result = content.get("user_expressions", {}).get(key, {})
        if result.get("status") != "ok":
            raise PageError(f"{page.rel}: inline expression `{{python}} {expr}` failed: "
                            f"{_error_text(result.get('ename'), result.get('evalue'), result.get('traceback') or [])}")
        results[expr] = result
    return results
