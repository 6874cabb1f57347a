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


# `make test` runs the suite on two workers (pytest-xdist, `-n 2 --dist loadgroup`). A group runs whole, in order, on
# one worker: every test that reads the smoke course is one group (the course is executed once, not once per worker);
# every other module is its own group (its module fixtures, a trained run say, are made once). The two longest groups
# go first, one to each worker, and the shorter ones fill in behind them.
SMOKE_COURSE_GROUP = "smoke-course"
FIRST = (SMOKE_COURSE_GROUP, "test_student_notebooks.py", "test_interrupt_sweep.py")   # longest first (minutes)


def xdist_group_of(item) -> str:
    if {"smoke_course", "course_records"} & set(getattr(item, "fixturenames", ())):
        return SMOKE_COURSE_GROUP
    return item.path.name


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group(xdist_group_of(item)))
    rank = {group: i for i, group in enumerate(FIRST)}
    # sorted() is stable: within a group (and among the other groups) the collection order stays
    items.sort(key=lambda item: rank.get(xdist_group_of(item), len(FIRST)))
