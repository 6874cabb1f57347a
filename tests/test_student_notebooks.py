"""The student notebooks run where students run them: lab pip-installed from a wheel, no checkout, an empty folder.

The project is built as a wheel from a copy of its sources and installed by each notebook's own first cell into a
fresh virtual environment that has no other copy of lab (the test environment's editable install is hidden from
it). Every notebook then runs from an empty folder on the smoke profile, cell by cell, in a kernel of that
environment: every cell must run, and nothing may be written under site-packages (records and checkpoints belong
in a working folder, never inside the installed package).
"""
from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest

from lab.__main__ import site_pages
from lab.site import write_notebooks
from lab.site.student_run import CellFailure, build_wheel, run_notebook

ROOT = Path(__file__).resolve().parent.parent
PAGES = site_pages(ROOT)


@pytest.fixture(scope="module")
def student_python(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(python of a fresh venv without lab, its site-packages, the built wheel)."""
    work = tmp_path_factory.mktemp("student")
    wheel = build_wheel(ROOT, work)

    venv.EnvBuilder(with_pip=False).create(work / "venv")
    python = work / "venv" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The venv sees this environment's packages (torch, transformers, pip, ipykernel, the offline assets) through
    # a folder of links to them, minus the editable lab: a notebook finds only the lab its own cell installs.
    deps = work / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("ecbs5200_lab", "__editable__", "_ecbs5200_lab")):
            (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    return python, site, wheel


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_student_notebook_runs_from_the_installed_wheel(page, student_python, tmp_path):
    python, site, wheel = student_python
    [path] = write_notebooks([page], ROOT, tmp_path / "nb", install_source=str(wheel))
    nb = nbformat.read(path, as_version=4)
    assert not any(line.lstrip().startswith("#|") for c in nb.cells if c.cell_type == "code"
                   for line in c.source.splitlines()), "Quarto option lines left in a notebook"

    folder = tmp_path / "empty"
    folder.mkdir()
    (tmp_path / "tmp").mkdir()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(LAB_PROFILE="smoke", TMPDIR=str(tmp_path / "tmp"), PYTHONDONTWRITEBYTECODE="1")
    installed = set()

    def after_install():                       # the first code cell is the install cell
        installed.update(_files(site))
        assert any(name.startswith("lab/") for name in installed), "the install cell did not install lab"

    try:
        run_notebook(path, python, folder, env, timeout=900, after_install=after_install)
    except CellFailure as e:
        pytest.fail(str(e))
    assert _files(site) == installed, f"written under site-packages: {sorted(_files(site) - installed)}"


def test_the_wheel_asks_for_a_torch_it_can_share_and_ships_what_pages_read(student_python):
    import zipfile
    _, _, wheel = student_python
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    torch_req = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: torch")]
    assert torch_req and not any("==" in line for line in torch_req), torch_req   # Kaggle's CUDA torch stays
    # the floors that work (benchmarks/floors.py): torch 2.6 cannot export week 4's ONNX; peft < 0.18 cannot import
    assert "Requires-Dist: torch>=2.7" in metadata and "Requires-Dist: peft>=0.18" in metadata
    assert "lab/resources/mixed_cuda_cpu_profile.json" in names
    # the exact local build is for `make` only
    assert "torch==" in (ROOT / "constraints.txt").read_text()
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
