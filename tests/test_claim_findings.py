"""One real page with one claim made to fail: the site render stops at it, the student notebook prints the course's
numbers next to the student's and runs to its end.

The claim is broken in a copy of the page (its threshold raised out of reach), in a temporary site. The site
render runs on the smoke profile with that one claim enforced (LAB_ENFORCE_CLAIM), so smoke's relaxation (a broken
claim only warns) does not hide its failure; the notebook runs on smoke too, in a kernel with none of a site render's variables.
Both read a copy of the session's smoke course's records and its fine-tuned runs (conftest.smoke_course): the page's
measurements are the course's, so neither trains nor measures week 3 again. Week 3 is the page: it reads the most
records for the least work (no export, no timing), so its two renders and its notebook take seconds each.
"""
import json
import os
import shutil
from pathlib import Path

import pytest
from nbclient import NotebookClient

from lab.display import claims
from lab.site import PageError, render_pages
from lab.site.freeze import entry_dir
from lab.site.notebooks import notebook_for

ROOT = Path(__file__).resolve().parent.parent
PAGE = "course/03-error-analysis.qmd"
CLAIM = "ECE is a share between 0 and 0.5 for two classes"
HOLDS, BROKEN = "claims.expect(0 <= ece_full <= 0.5 and", "claims.expect(0 <= ece_full <= -1 and"


@pytest.fixture(scope="module")
def site(tmp_path_factory, smoke_course) -> Path:
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(smoke_course.records, site / "records", ignore=shutil.ignore_patterns(".lab*.lock", "*.tmp"))
    (site / "runs").symlink_to(smoke_course.runs, target_is_directory=True)
    for name in ("_quarto.yml", "pyproject.toml", "requirements-offline.txt"):
        shutil.copy(ROOT / name, site / name)
    text = (ROOT / PAGE).read_text()
    assert text.count(HOLDS) == 1, f"{PAGE} no longer has the claim this test breaks: {HOLDS}"
    (site / PAGE).parent.mkdir(parents=True)
    (site / PAGE).write_text(text.replace(HOLDS, BROKEN))
    return site


def _env(site: Path) -> dict:
    return {"LAB_PROFILE": "smoke", "LAB_RECORDS": str(site / "records"), "LAB_RUNS": str(site / "runs")}


def test_the_site_render_of_the_page_stops_at_the_broken_claim(site):
    with pytest.raises(PageError, match="ClaimError.*" + CLAIM):
        render_pages([Path(PAGE)], site, env={**_env(site), claims.STRICT_ENV: CLAIM})


def test_the_student_notebook_of_the_page_prints_course_and_student_numbers_and_runs_to_its_end(site, tmp_path):
    render_pages([Path(PAGE)], site, env=_env(site))          # smoke: the broken claim only warns here
    frozen = json.loads((entry_dir(site, PAGE) / "execute-results" / "html.json").read_text())
    course = frozen["lab"]["course"]
    assert CLAIM in course["claims"] and course["hardware"].startswith(("CPU: ", "GPU: "))
    assert course["inline"]                                  # the prose's values, for the notebook's text

    nb = notebook_for(Path(PAGE), site, install_source="unused")
    assert "lab.display.student.use_course(" in nb.cells[2].source and CLAIM in nb.cells[2].source
    install = nb.cells.pop(1)                                # lab is importable here already (PYTHONPATH)
    assert "%pip install" in install.source
    env = {k: v for k, v in os.environ.items() if k not in claims.SITE_RENDER_ENV and not k.startswith("LAB_")}
    env.update(_env(site), PYTHONPATH=str(ROOT))
    folder = tmp_path / "student"
    folder.mkdir()
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute(env=env, cwd=str(folder))                 # raises CellExecutionError if any cell fails

    texts = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
             for c in nb.cells if c.cell_type == "code"]
    [shown] = [t for t in texts if CLAIM in t]
    assert "the course measured" in shown and "you measured" in shown and "finding" in shown
    full = next(line.split() for line in shown.splitlines() if line.strip().startswith("full"))
    assert full[1] == course["claims"][CLAIM]["full"]        # the course's number, from the site render
    assert any("quotes the course's values" in t for t in texts)     # the section's comparison ran
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")   # it ran to its end
