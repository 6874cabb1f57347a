"""Shared test set-up: never write into the committed record or runs, never wait on the hub.

Tests must not touch course/measurements or the committed _freeze: every record goes to a per-session temp folder
(the autouse fixture below), and the pages are executed into a temp site (`smoke_course`).

`smoke_course` is the one execution of the whole site on the smoke profile that a test session makes: the site's
sources copied into a temp root, as `python -m lab course --root DIR` copies them, every page executed there in the
site's order with one records folder and one runs folder, as `make course` runs them (week 6 reads the records weeks
2-5 made). The tests that need executed pages (test_pages), their records (test_gpu_branches, test_claim_findings)
or their fine-tuned runs read it instead of executing the pages again; a test that adds or changes records does so
in a copy (`course_records`), so the course stays as it was rendered.
"""
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under `make test` (pytest-xdist, one worker per core) each worker and the notebooks and processes it starts get an
# equal share of the cores, set before torch is first imported: two workers of two threads each on 2 cores would
# oversubscribe them, and OpenMP's spinning threads then wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(share))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _records_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path_factory.getbasetemp() / "records"))
    # Runs too: two test sessions on one machine (one user, two checkouts) must not share a run folder.
    monkeypatch.setenv("LAB_RUNS", str(tmp_path_factory.getbasetemp() / "runs"))


@dataclass
class SmokeCourse:
    """The site executed once on the smoke profile, in a temp root."""
    root: Path                      # the temp site: its sources, and its _freeze/ as the render wrote it
    records: Path                   # the records folder every page read and wrote
    runs: Path                      # the fine-tuned runs (checkpoints) the pages trained
    pages: list[str]                # the site's pages, relative to the root, in the order they were executed
    failed: dict[str, str] = field(default_factory=dict)   # page -> the executor's whole error (PageError)

    @property
    def env(self) -> dict:
        """The variables the pages were executed with."""
        return {"LAB_PROFILE": "smoke", "LAB_RECORDS": str(self.records), "LAB_RUNS": str(self.runs)}

    def entry(self, page: str) -> Path:
        """The html.json the render wrote for `page` (relative to the root)."""
        from lab.site.freeze import entry_dir
        return entry_dir(self.root, page) / "execute-results" / "html.json"


@pytest.fixture(scope="session")
def smoke_course(tmp_path_factory) -> SmokeCourse:
    from lab.__main__ import copy_site_sources, site_pages
    from lab.site import PageError, render_pages

    base = tmp_path_factory.mktemp("smoke-course")
    root = base / "site"
    copy_site_sources(ROOT, root)
    # the records in the root's own folder, where `lab course --root` keeps them and `lab check --root` looks
    course = SmokeCourse(root=root, records=root / "course" / "measurements", runs=base / "runs",
                         pages=[p.relative_to(root).as_posix() for p in site_pages(root)])
    for page in course.pages:       # page by page, going on past a failing one, as `lab course` does
        try:
            render_pages([Path(page)], root, env=course.env)
        except PageError as e:      # the whole error (cell, traceback), for the page's own test to show
            course.failed[page] = str(e)
    return course


@pytest.fixture
def course_records(smoke_course, tmp_path, monkeypatch) -> Path:
    """A copy of the smoke course's records folder, as $LAB_RECORDS, with the course's runs as $LAB_RUNS: for a
    test that adds records of its own (synthetic GPU ones, say) to what the course measured. Modification times are
    kept, so a record the course measured in this session (a noisy one too) is still this run's to reuse."""
    folder = tmp_path / "records"
    shutil.copytree(smoke_course.records, folder, ignore=shutil.ignore_patterns(".lab*.lock", "*.tmp"))
    monkeypatch.setenv("LAB_RECORDS", str(folder))
    monkeypatch.setenv("LAB_RUNS", str(smoke_course.runs))
    return folder


# The tests that execute pages or notebooks take minutes; `-m "not slow"` leaves them out of a quick local run (CI
# runs every test).
SLOW_FIXTURES = {"smoke_course", "course_records", "student_python"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: executes the site's pages or notebooks (minutes); CI runs it")


# `make test` runs the suite on one worker per core (pytest-xdist, `-n auto`), in groups. A group runs whole, in order,
# on one worker: the modules whose tests read the smoke course are one group (the course is executed once, not once
# per worker); every other module is its own group (its module fixtures, a trained run say, are made once). The
# longest groups go first, one to each worker, and the shorter ones fill in behind them. (xdist's own `loadgroup`
# cannot do this under pytest 9.2: it marks a test's group in `item._nodeid`, which pytest 9.2 no longer reads.)
SMOKE_COURSE_GROUP = "smoke-course"
SMOKE_COURSE_MODULES = {"test_claim_findings.py", "test_exercise_code.py", "test_gpu_branches.py", "test_pages.py"}
# The rehearsal's notebooks from an empty folder (3 minutes) share nothing with the smoke notebooks' session but the
# wheel (seconds to build): a group of their own, so that the two halves of test_student_notebooks.py run on two
# workers at once instead of 7 minutes on one.
REHEARSAL_NOTEBOOKS_GROUP = "rehearsal-notebooks"
REHEARSAL_NOTEBOOKS_TEST = "test_student_notebooks.py::test_week1_and_week4_notebooks_run_from_the_wheel_on_the_rehearsal"
# The longest groups first, longest to shortest (seconds of a fresh-clone CI run on 2 cores, xdist's two workers
# sharing them): the smoke course and its readers 430, the smoke notebooks 230, the rehearsal's notebooks 225, the
# Ctrl-C sweep 135, test_cli 100, test_verify 90, then 26-41 each. The rest take seconds. A worker asks for its next
# group while two of its tests are left, so the groups handed out last must be short ones, or one worker still runs
# a long one while the other has nothing left.
FIRST = (SMOKE_COURSE_GROUP, "test_student_notebooks.py", REHEARSAL_NOTEBOOKS_GROUP, "test_interrupt_sweep.py",
         "test_cli.py", "test_verify.py", "test_site.py", "test_rehearsal.py", "test_lora.py", "test_checkpoint.py",
         "test_quantize.py", "test_benchmarks.py")
if gone := [name for name in FIRST if name.endswith(".py") and not (ROOT / "tests" / name).is_file()]:
    raise RuntimeError(f"tests/conftest.py FIRST names test modules that are not there: {gone}")


def group_of(nodeid: str) -> str:
    path, _, test = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1]
    if f"{module}::{test}".startswith(REHEARSAL_NOTEBOOKS_TEST):
        return REHEARSAL_NOTEBOOKS_GROUP
    return SMOKE_COURSE_GROUP if module in SMOKE_COURSE_MODULES else module


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    # xdist would otherwise hand out the groups with the most tests first, not the longest: the Ctrl-C sweep (two
    # tests, two minutes) then started last, and one worker ran it while the other had nothing left to do
    config.option.loadscopereorder = False
    return ByGroup(config, log)


def pytest_collection_modifyitems(items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
        if {"smoke_course", "course_records"} & fixtures and group_of(item.nodeid) != SMOKE_COURSE_GROUP:
            raise pytest.UsageError(f"{item.nodeid} reads the smoke course: add its module to SMOKE_COURSE_MODULES "
                                    "in tests/conftest.py, or a second worker executes the whole course again")
    rank = {group: i for i, group in enumerate(FIRST)}
    # sort() is stable: within a group (and among the other groups) the collection order stays
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(FIRST)))
