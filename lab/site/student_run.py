"""Run a student notebook as a student would: lab installed from a wheel by the notebook's own first cell, in
another Python environment, from a working folder with no checkout.

Used by tests/test_student_notebooks.py (a venv that borrows this environment's packages) and by
benchmarks/floors.py (a venv with an older platform stack and the lowest supported versions).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import default

# What a wheel of the project is built from (a copy of these: the checkout gets no build/ or egg-info folders).
WHEEL_SOURCES = ("lab", "pyproject.toml", "README.md")


def build_wheel(root: Path, work: Path) -> Path:
    """Build the project's wheel from a copy of its sources under `work`; returns the wheel's path."""
    src = Path(work) / "src"
    for name in WHEEL_SOURCES:
        if (Path(root) / name).is_dir():
            shutil.copytree(Path(root) / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(root) / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(Path(work) / "dist"), str(src)], check=True)
    [wheel] = (Path(work) / "dist").glob("ecbs5200_lab-*.whl")
    return wheel


def borrowing_venv(work: Path) -> tuple[Path, Path]:
    """A fresh venv under `work` that sees this environment's packages (torch, transformers, pip, ipykernel, the
    offline assets) through a folder of links to them, minus the editable lab: a notebook there finds only the lab
    its own install cell installs. Returns (its python, its site-packages)."""
    import sysconfig
    import venv
    venv.EnvBuilder(with_pip=False).create(Path(work) / "venv")
    python = Path(work) / "venv" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = Path(work) / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("ecbs5200_lab", "__editable__", "_ecbs5200_lab")):
            (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    return python, site


@dataclass
class CellFailure(Exception):
    notebook: str
    index: int
    source: str
    error: str

    def __str__(self) -> str:
        return f"{self.notebook}, cell {self.index}:\n{self.source[:300]}\n{self.error[-2000:]}"


def run_notebook(path: Path, python: Path, folder: Path, env: dict, timeout: int = 900, after_install=None) -> float:
    """Execute every code cell of the notebook at `path`, in order, in a kernel of `python`, with `folder` as the
    working directory and exactly `env` as the environment. `after_install()` is called after the first code cell
    (the install cell). Raises CellFailure naming the first cell that fails; returns the seconds taken."""
    nb = nbformat.read(str(path), as_version=4)

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="student", language="python", name=kernel_name)

    class Kernels(KernelManager):
        @default("kernel_spec_manager")
        def _specs(self):
            return Specs()

    started = time.monotonic()
    client = NotebookClient(nb, timeout=timeout, kernel_manager_class=Kernels, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    first = True
    with client.setup_kernel(env=env, cwd=str(folder)):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as e:
                raise CellFailure(Path(path).name, index, cell.source, str(e)) from None
            if first and after_install:
                after_install()
            first = False
    return time.monotonic() - started


def run_in_turn(notebooks: list[Path], python: Path, folder: Path, env: dict, tag: str,
                timeout: int = 1800) -> list[dict]:
    """Run the notebooks in order in one working folder, as one student session would. A row per notebook:
    "pass" or "fail", the seconds it took, the 1-minute load average before and after (a busy machine slows it),
    and for a failure the cell, its source and the end of its error."""
    rows = []
    for path in notebooks:
        row = {"notebook": Path(path).name, "load_before": round(os.getloadavg()[0], 2)}
        print(f"[{tag}] {row['notebook']} ...", flush=True)
        try:
            row["seconds"] = round(run_notebook(path, python, folder, env, timeout=timeout), 1)
            row["result"] = "pass"
        except CellFailure as e:
            row.update(result="fail", cell=e.index, source=e.source[:200], error=e.error[-800:])
        row["load_after"] = round(os.getloadavg()[0], 2)
        print(f"[{tag}] {row['notebook']}: {row['result']} {row.get('seconds', '')}", flush=True)
        rows.append(row)
    return rows


def started(root: Path) -> dict:
    """When, where and at which commit of lab a run starts (taken before it, so an edit during a run that lasts half
    an hour cannot be credited to it)."""
    import datetime as dt
    from lab.record import env as lab_env
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": lab_env.device_label({"device": "cpu", "cpu": lab_env.cpu_name(), "cpu_count": os.cpu_count()}),
            "lab_commit": lab_env.git_state(root)}


def save(record: dict, out: Path, markdown: str) -> None:
    """The results file (JSON) and its Markdown summary beside it (.md)."""
    import json
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
