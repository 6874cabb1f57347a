"""The command line as a user runs it: `python -m lab check|render|status`, in a subprocess."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lab(*args, cwd=ROOT, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def site(tmp_path):
    """A tiny project: one page, rendered once."""
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\n")
    page = tmp_path / "index.qmd"
    page.write_text(textwrap.dedent("""\
        ---
        title: "Tiny"
        ---

        ```{python}
        #| label: fig-line
        #| fig-cap: "A line"
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3])
        plt.show()
        ```

        The answer is `{python} 6 * 7`.
        """))
    r = lab("render", str(page), "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    return tmp_path


def test_check_passes_on_a_fresh_site_and_names_an_edited_page(site):
    assert lab("check", "--root", str(site)).returncode == 0
    page = site / "index.qmd"
    page.write_text(page.read_text().replace("answer", "answex"))     # one character
    r = lab("check", "--root", str(site))
    assert r.returncode != 0
    assert "index.qmd" in r.stderr


def test_check_names_a_missing_figure(site):
    for png in (site / "_freeze").rglob("*.png"):
        png.unlink()
    r = lab("check", "--root", str(site))
    assert r.returncode != 0 and "index.qmd" in r.stderr


def test_render_of_a_raising_cell_fails_names_the_cell_and_keeps_the_old_freeze(site):
    frozen = site / "_freeze" / "index" / "execute-results" / "html.json"
    before = frozen.read_bytes()
    page = site / "index.qmd"
    page.write_text(page.read_text().replace("plt.plot([1, 2, 3])", "plt.plot([1, 2, 3])\n1 / 0"))
    r = lab("render", str(page), "--root", str(site))
    assert r.returncode != 0
    assert "fig-line" in r.stderr and "ZeroDivisionError" in r.stderr
    assert frozen.read_bytes() == before


def test_status_lists_records_with_provenance(tmp_path):
    code = "from lab import measure; measure.measured('week0/demo', lambda: {'ms': 1.0})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(os.environ, LAB_RECORDS=str(tmp_path)))
    r = lab("status", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "week0/demo" in r.stdout and "CPU:" in r.stdout and "fresh" in r.stdout


def test_unknown_profile_is_a_clear_error():
    r = lab("profile", env={"LAB_PROFILE": "tpu"})
    assert r.returncode != 0 and "valid profiles: smoke, cpu, gpu" in r.stderr
