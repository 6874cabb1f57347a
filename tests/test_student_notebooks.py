"""The student notebooks run where students run them: lab pip-installed from a wheel, no checkout, an empty folder.

The project is built as a wheel from a copy of its sources and installed by each notebook's own first cell into a
fresh virtual environment that has no other copy of lab (the test environment's editable install is hidden from
it). Every notebook then runs on the smoke profile, cell by cell, in a kernel of that environment: every cell must
run, and nothing may be written under site-packages (records and checkpoints belong in a working folder, never inside
the installed package).

The smoke notebooks run in turn in one working folder (and one temp folder, where smoke's records and runs go), in
the site's order, as one student's session would: week 1 starts from an empty folder and trains, and each later week
reuses the runs and records the weeks before it made, measuring only its own. The cold path, a notebook opened in a
fresh session that must remake what it needs (week 4 remakes week 1's model, and weeks 2 and 5's for the latency
record), is the rehearsal's: weeks 1 and 4 on the tiny ModernBERT, each from an empty folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from lab.__main__ import site_pages
from lab.site import notebooks, write_notebooks
from lab.site.student_run import CellFailure, borrowing_venv, build_wheel, run_notebook

ROOT = Path(__file__).resolve().parent.parent
PAGES = [p for p in site_pages(ROOT) if notebooks.has_notebook(p, ROOT)]   # the class page has none


@pytest.fixture(scope="module")
def student_python(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(python of a fresh venv without lab, its site-packages, the built wheel)."""
    work = tmp_path_factory.mktemp("student")
    wheel = build_wheel(ROOT, work)
    python, site = borrowing_venv(work)
    return python, site, wheel


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def student_session(tmp_path_factory) -> Path:
    """One student's session: a working folder and a temp folder that the smoke notebooks share, in turn."""
    session = tmp_path_factory.mktemp("session")
    (session / "work").mkdir()
    (session / "tmp").mkdir()
    return session


def _run_as_student(page: Path, profile: str, student_python, tmp_path: Path, session: Path | None = None) -> None:
    """Write the page's notebook, installing lab from the wheel, and run every cell of it on `profile` in the
    session's working folder (`session`/work, with `session`/tmp as its temp folder), from an empty one when no
    session is given; fail naming the cell that fails, or any file written under site-packages."""
    python, site, wheel = student_python
    [path] = write_notebooks([page], ROOT, tmp_path / "nb", install_source=str(wheel))
    nb = nbformat.read(path, as_version=4)
    assert not any(line.lstrip().startswith("#|") for c in nb.cells if c.cell_type == "code"
                   for line in c.source.splitlines()), "Quarto option lines left in a notebook"

    if session is None:
        session = tmp_path / "session"
        (session / "work").mkdir(parents=True)
        (session / "tmp").mkdir()
    folder = session / "work"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(LAB_PROFILE=profile, TMPDIR=str(session / "tmp"), PYTHONDONTWRITEBYTECODE="1")
    installed = set()

    def after_install():                       # the first code cell is the install cell
        installed.update(_files(site))
        assert any(name.startswith("lab/") for name in installed), "the install cell did not install lab"

    try:
        run_notebook(path, python, folder, env, timeout=900, after_install=after_install)
    except CellFailure as e:
        pytest.fail(str(e))
    assert _files(site) == installed, f"written under site-packages: {sorted(_files(site) - installed)}"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_student_notebook_runs_from_the_installed_wheel_after_the_weeks_before_it(page, student_python,
                                                                                   student_session, tmp_path):
    _run_as_student(page, "smoke", student_python, tmp_path, session=student_session)
    (student_session / "ran").mkdir(exist_ok=True)
    (student_session / "ran" / page.stem).touch()        # for the submissions' test below


def test_each_week_notebook_on_smoke_hands_in_a_submission_the_class_refuses_as_smoke(student_session):
    # Reuses the smoke runs above (no notebook runs again): each week's last cell wrote its submission.
    from lab.record import class_record
    from lab.record.submission import week_of
    ran = sorted(w for p in (student_session / "ran").glob("*") if (w := week_of(p.name)))
    if not ran:
        pytest.skip("no week's notebook ran in this session: run this file's notebook tests first")
    folder = student_session / "work" / "lab-output" / "submissions"
    files = sorted(folder.glob("week*.json"))
    assert sorted(f.name.split("-", 1)[0] for f in files) == ran
    assert len({f.name.split("-", 1)[1] for f in files}) == 1           # one alias, kept from week to week
    record, rows = class_record.gather(folder)
    refused = [r for r in rows if r.file.endswith(".json")]
    assert record["submissions"] == [] and len(refused) == len(ran)
    assert all(r.outcome == "refused" and "never counted" in r.reason and "smoke" in r.reason for r in refused)


# The T4 course's model on a student's machine: ModernBERT's architecture, its LoRA targets, ONNX export and int8.
# Weeks 1 and 4 here, at the tiny ModernBERT's size, each from an empty folder (week 4 remakes every model it times);
# benchmarks/rehearsal_notebooks.py runs them at full size.
@pytest.mark.parametrize("page", ["course/01-fine-tuning.qmd", "course/04-quantization.qmd"])
def test_week1_and_week4_notebooks_run_from_the_wheel_on_the_rehearsal_from_an_empty_folder(page, student_python,
                                                                                            tmp_path):
    _run_as_student(ROOT / page, "rehearsal-smoke", student_python, tmp_path)


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
