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
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets import default

from lab.progress import CHANNEL_ENV, relay

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


def _option(cell: Cell, execute: dict, key: str, fallback):
    return cell.options.get(key, execute.get(key, fallback))


def execute_page(page: Page, execute: dict, env: dict | None = None, timeout: int = 3600,
                 progress=None) -> list[ExecutedCell]:
    """Run the page; returns one ExecutedCell per parsed cell (raw cells untouched).

    `execute` holds the page's execute options (project `execute:` merged with the page's).
    `progress(cell_number)` is called after each code cell."""
    code = [c for c in page.cells if c.kind == "code"]
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    setup = nbformat.v4.new_code_cell(SETUP_CODE)
    nb.cells = [setup] + [nbformat.v4.new_code_cell(c.source) for c in code]
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=_KernelManager,
        allow_errors=bool(execute.get("error", False)),
        record_timing=False,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(page.path.parent)}},
    )
    # LAB_PAGE tells the page's own code which page it is (lab.claims names it in a broken claim's message).
    # LAB_PROGRESS_FILE is the side channel for progress bars: whatever the kernel writes to stdout/stderr, even
    # to fd 2, becomes a cell output and would be frozen, so lab.progress writes there and we relay it.
    workdir = tempfile.TemporaryDirectory(prefix="lab-page-")
    channel = Path(workdir.name) / "progress.txt"
    kernel_env = {**os.environ, **QUARTO_ENV, "LAB_PAGE": page.rel, CHANNEL_ENV: str(channel), **(env or {})}
    results: list[ExecutedCell] = []
    number = 0
    with workdir, relay(channel), client.setup_kernel(env=kernel_env):
        client.execute_cell(setup, 0, store_history=False)
        for cell in page.cells:
            done = ExecutedCell(cell)
            results.append(done)
            if cell.kind == "markdown":
                done.user_expressions = _inline(client, page, cell)
            elif cell.kind == "code":
                number += 1
                done.execution_count = number
                if _option(cell, execute, "eval", True):
                    done.outputs = _run_code(client, page, cell, number, execute)
                if progress:
                    progress(number)
    return results


def _run_code(client: NotebookClient, page: Page, cell: Cell, number: int, execute: dict) -> list:
    # The kernel gets the code without the option lines, as Quarto sends it (cell magics work).
    nb_cell = nbformat.v4.new_code_cell("\n".join(cell.code_lines))
    if _option(cell, execute, "error", False):
        nb_cell.metadata["tags"] = ["raises-exception"]
    started = time.monotonic()
    try:
        client.execute_cell(nb_cell, number, execution_count=number, store_history=True)
    except CellExecutionError as e:
        raise PageError(f"{page.rel}: {describe_cell(cell, number)} raised "
                        f"{_error_text(e.ename, e.evalue, e.traceback)}") from None
    except CellTimeoutError:
        raise PageError(f"{page.rel}: {describe_cell(cell, number)} timed out after "
                        f"{time.monotonic() - started:.0f} s") from None
    except DeadKernelError as e:
        raise PageError(f"{page.rel}: kernel died while running {describe_cell(cell, number)}: {e}") from None
    return list(nb_cell.outputs)


def _inline(client: NotebookClient, page: Page, cell: Cell) -> dict:
    expressions = cell.inline_expressions()
    if not expressions:
        return {}
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
