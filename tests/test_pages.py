"""Every page of the site executes on the smoke profile.

The freeze hash only covers a page's source, so a change to `lab` that breaks a page would go unnoticed by
`python -m lab check`. This test reads the session's smoke course (conftest.smoke_course: every page executed once,
tiny random-init models, records in a temp folder, through the same executor that writes _freeze/), so such a change
fails CI.

The pages share one records folder and run in the site's order, as in `make course`: week 6 reads weeks 2-5's
records rather than measuring them again (the student notebooks measure them in a student's environment).
"""
import json
from pathlib import Path

import pytest

from lab.__main__ import site_pages
from lab.site import render_pages, write_notebooks
from lab.site.check import published_problems

ROOT = Path(__file__).resolve().parent.parent
PAGES = site_pages(ROOT)
RELS = [p.relative_to(ROOT).as_posix() for p in PAGES]


def test_the_smoke_course_executes_every_page_of_the_site(smoke_course):
    assert smoke_course.pages == RELS                        # the checkout's pages, in the site's order


@pytest.mark.parametrize("rel", RELS, ids=RELS)
def test_page_executes_on_the_smoke_profile(rel, smoke_course):
    assert rel not in smoke_course.failed, smoke_course.failed[rel]
    result = json.loads(smoke_course.entry(rel).read_text())["result"]
    assert ".cell-output-error" not in result["markdown"]
    assert "`{python}" not in result["markdown"]          # every inline value was substituted
    assert published_problems(result["markdown"]) == []   # no stderr, warning, local path or broken table


def test_every_page_but_the_class_page_gets_a_student_notebook(tmp_path):
    from lab.site.notebooks import has_notebook
    written = write_notebooks(PAGES, ROOT, tmp_path, install_source="ecbs5200-lab")
    # the class page is the instructor's (what the class measured): a student has nothing of it to run
    assert [p.relative_to(ROOT).as_posix() for p in PAGES if not has_notebook(p, ROOT)] == ["course/class.qmd"]
    assert sorted(p.stem for p in written) == sorted(p.stem for p in PAGES if p.stem != "class")
    for nb_path in written:
        nb = json.loads(Path(nb_path).read_text())
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
        assert any("pip install" in "".join(c["source"]) for c in nb["cells"][:3])


def _latency_like(profile, noisy):
    return {"rows": [], "noisy": noisy}


def test_the_index_shows_the_busy_machine_note_for_a_noisy_record_it_lists(tmp_path, monkeypatch):
    from lab import get_profile
    from lab.record import store
    records = tmp_path / "records"
    env = {"LAB_PROFILE": "smoke", "LAB_RECORDS": str(records)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    frozen = tmp_path / "_freeze" / "index" / "execute-results" / "html.json"
    busy = {"why": "other processes used 1.00 of the 2 cores, above 0.5", "load": [2.5, 2.9, 3.1, 3.0]}
    for noisy in (busy, None):                  # then the same record, measured quiet: the control
        store.measured("t/latency", _latency_like, profile=get_profile("smoke"), noisy=noisy)
        render_pages([ROOT / "index.qmd"], ROOT, freeze_root=tmp_path, env=env)
        markdown = json.loads(frozen.read_text())["result"]["markdown"]
        shown = "Measured on a busy machine" in markdown
        assert shown == (noisy is not None), markdown
    assert "t/latency" in markdown                                  # the provenance table lists the record
