"""The command line as a user runs it: `python -m lab check|render|status`, in a subprocess."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.record import scratch

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
    code = "from lab.record import store; store.measured('week0/demo', lambda: {'ms': 1.0})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(os.environ, LAB_RECORDS=str(tmp_path)))
    r = lab("status", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "week0/demo" in r.stdout and "CPU:" in r.stdout and "fresh" in r.stdout


def test_unknown_profile_is_a_clear_error():
    r = lab("profile", env={"LAB_PROFILE": "tpu"})
    assert r.returncode != 0 and "valid profiles: smoke, cpu, gpu" in r.stderr


def test_status_names_an_unreadable_record_without_nan_and_recommends_what_works(tmp_path):
    code = "from lab.record import store; store.measured('week0/demo', lambda: {'ms': 1.0})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(os.environ, LAB_RECORDS=str(tmp_path)))
    record = next(tmp_path.rglob("*.json"))
    record.write_text(record.read_text()[:50])
    r = lab("status", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "unreadable" in r.stdout and record.stem in r.stdout
    assert "NaN" not in r.stdout and "None" not in r.stdout
    assert "is this machine: re-render the pages" in r.stdout
    # and re-measuring it, as recommended, works: the record is replaced
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(os.environ, LAB_RECORDS=str(tmp_path)))
    assert "fresh" in lab("status", "--dir", str(tmp_path)).stdout


def test_render_of_a_missing_page_says_so():
    r = lab("render", "no-such-page.qmd")
    assert r.returncode == 2 and "no-such-page.qmd: no such file" in r.stderr
    r = lab("render", "README.md")
    assert r.returncode == 2 and "is not a .qmd page" in r.stderr


def test_profile_says_when_it_fell_back_from_gpu():
    r = lab("profile", env={"LAB_PROFILE": "gpu", "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert "profile: cpu" in r.stdout and "fell back to 'cpu'" in r.stdout and "chosen by" not in r.stdout
    r = lab("profile", env={"LAB_PROFILE": "smoke"})
    assert "profile: smoke" in r.stdout and "chosen by LAB_PROFILE=smoke" in r.stdout


def test_check_fails_on_an_empty_or_missing_root(tmp_path):
    for root in (tmp_path, tmp_path / "nonexistent"):
        r = lab("check", "--root", str(root))
        assert r.returncode == 1 and "no pages to check" in r.stderr and "ok" not in r.stdout


SLEEPY = """\
---
title: "Sleepy"
---

```{python}
import os, pathlib, time
pathlib.Path("kernel.pid").write_text(str(os.getpid()))
time.sleep(120)
```
"""


def start_sleepy_render(root: Path, page: str = SLEEPY, **kwargs) -> subprocess.Popen:
    (root / "_quarto.yml").write_text("project:\n  type: website\n")
    (root / "index.qmd").write_text(page)
    child = subprocess.Popen([sys.executable, "-m", "lab", "render", str(root / "index.qmd"), "--root", str(root)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, **kwargs)
    deadline = time.monotonic() + 120
    while not (root / "kernel.pid").exists():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.2)
    return child


def test_ctrl_c_during_a_render_exits_130_with_one_line(tmp_path):
    child = start_sleepy_render(tmp_path)
    os.killpg(child.pid, signal.SIGINT)              # what a terminal's Ctrl-C does: the foreground group
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("interrupted: index.qmd"), said      # no traceback, no warning
    assert [line for line in out.splitlines() if line.strip()] == ["[1/1] index.qmd: executing 1 cells"]
    assert not (tmp_path / "_freeze" / "index").exists()


DEAF = SLEEPY.replace("import os, pathlib, time\n", "import os, pathlib, signal, time\n"
                      "signal.signal(signal.SIGINT, signal.SIG_IGN)   # as a request lost to the SIGINT: no answer\n")


def test_ctrl_c_stops_a_render_whose_kernel_never_answers_it_within_the_grace(tmp_path):
    from lab.site.execute import KERNEL_GRACE_S
    child = start_sleepy_render(tmp_path, page=DEAF)
    pressed = time.monotonic()
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=KERNEL_GRACE_S + 60)
    took = time.monotonic() - pressed
    assert child.returncode == 130, err
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("interrupted: index.qmd"), said      # no traceback
    assert KERNEL_GRACE_S <= took < KERNEL_GRACE_S + 30, took      # not the cell's 120 s, not before the grace
    assert not (tmp_path / "_freeze" / "index").exists()


def test_a_second_render_of_the_same_site_fails_naming_the_first(tmp_path):
    first = start_sleepy_render(tmp_path)
    try:
        r = lab("render", str(tmp_path / "index.qmd"), "--root", str(tmp_path))
        assert r.returncode == 1 and f"pid {first.pid}" in r.stderr and "rendering" in r.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_a_killed_render_leaves_nothing_in_the_temp_folder_that_the_next_run_does_not_clear(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    site = tmp_path / "site"
    site.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    child = start_sleepy_render(site, env=env)
    kernel = int((site / "kernel.pid").read_text())
    os.kill(child.pid, signal.SIGKILL)                # the render dies; its kernel notices and exits
    child.wait()
    deadline = time.monotonic() + 30
    while scratch.alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not scratch.alive(kernel), "the kernel outlived the render"
    assert list(tmp.glob("tmp*.json")) == []          # no kernel connection file (with its HMAC key) in the open
    subprocess.run([sys.executable, "-c", "from lab.record import scratch\nwith scratch.directory('next'): pass"],
                   env=env, check=True)
    assert list(tmp.iterdir()) == []


def test_status_marks_a_noisy_record_with_the_load_it_saw(tmp_path):
    code = ("from lab.record import store; store.measured('week0/demo', lambda quiet: {'ms': 1.0, 'noisy': None if quiet "
            "else {'why': 'spread 0.89 of the median', 'load': [2.1, 1.9]}}, quiet=QUIET)")
    env = dict(os.environ, LAB_RECORDS=str(tmp_path))
    subprocess.run([sys.executable, "-c", code.replace("QUIET", "True")], cwd=ROOT, check=True, env=env)
    quiet = lab("status", "--dir", str(tmp_path))
    assert "0 noisy or synthetic" in quiet.stdout and "noisy:" not in quiet.stdout       # the control
    subprocess.run([sys.executable, "-c", code.replace("QUIET", "False")], cwd=ROOT, check=True, env=env)
    r = lab("status", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "noisy: spread 0.89 of the median; load 2.1, 1.9" in r.stdout and "1 noisy or synthetic" in r.stdout


# ---- lab course: every page, even when one fails; --root DIR --------------------------------------------------

PAGE = '---\ntitle: "{title}"\n---\n\n```{{python}}\n#| label: {label}\n{code}\n```\n'


def _course_site(root: Path, broken: bool) -> Path:
    """index.qmd and two course pages; course/a.qmd raises when `broken`. a's earlier freeze entry is 'old'."""
    (root / "course").mkdir(parents=True)
    (root / "_quarto.yml").write_text("project:\n  type: website\n")
    (root / "index.qmd").write_text(PAGE.format(title="Home", label="home", code="print('home')"))
    (root / "course/a.qmd").write_text(PAGE.format(title="A", label="boom", code="1 / 0" if broken else "'a'"))
    (root / "course/b.qmd").write_text(PAGE.format(title="B", label="fine", code="print('b')"))
    old = root / "_freeze/course/a/execute-results/html.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"hash": "old"}')
    return old


@pytest.mark.parametrize("broken", [True, False])
def test_course_runs_every_page_lists_the_failures_and_keeps_the_failed_pages_freeze(tmp_path, broken):
    old = _course_site(tmp_path, broken)
    r = lab("course", "--root", str(tmp_path), env={"LAB_PROFILE": "smoke"})
    assert sorted(p.name for p in (tmp_path / "notebooks").glob("*.ipynb")) == ["a.ipynb", "b.ipynb", "index.ipynb"]
    for page in ("index", "course/b"):          # the pages after the failing one ran too
        assert (tmp_path / "_freeze" / page / "execute-results/html.json").is_file()
    if not broken:                              # the control: the same site with a working page passes
        assert r.returncode == 0, r.stderr
        assert json.loads(old.read_text())["hash"] != "old"
        return
    assert r.returncode == 1
    assert old.read_text() == '{"hash": "old"}'
    assert "1 of 3 pages failed" in r.stderr
    assert "  course/a.qmd: cell 'boom' raised ZeroDivisionError: division by zero" in r.stderr.splitlines()


def test_ctrl_c_stops_the_whole_course_with_130(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\n")
    (tmp_path / "course").mkdir()
    (tmp_path / "course/a.qmd").write_text(SLEEPY)            # pages run in order: a, then b
    (tmp_path / "course/b.qmd").write_text(PAGE.format(title="B", label="later", code="print('later')"))
    child = subprocess.Popen([sys.executable, "-m", "lab", "course", "--root", str(tmp_path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env=dict(os.environ, LAB_PROFILE="smoke"))
    deadline = time.monotonic() + 120
    while not (tmp_path / "course/kernel.pid").exists():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted: course/a.qmd" in err
    assert "course/b.qmd" not in out and not (tmp_path / "_freeze/course/b").exists()
    assert not (tmp_path / "notebooks").exists()


def test_course_into_an_empty_root_copies_the_sources_only_and_executes_there(tmp_path, monkeypatch):
    from lab import __main__ as cli
    source, target = tmp_path / "checkout", tmp_path / "rehearsal"
    _course_site(source, broken=False)
    (source / "course/a.qmd").write_text(PAGE.format(
        title="A", label="measures", code="from lab import get_profile\nfrom lab.record import store\n"
        "store.measured('t/a', lambda profile: {'n': 1}, profile=get_profile())"))
    (source / "requirements-offline.txt").write_text("# no offline assets\n")
    (source / "course/measurements/t/a").mkdir(parents=True)
    (source / "course/measurements/t/a/cpu-x.json").write_text("{}")
    monkeypatch.setattr(cli, "project_root", lambda given=None: Path(given).resolve() if given else source)
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    monkeypatch.delenv("LAB_RECORDS")            # the records go to the root's own folder
    assert cli.main(["course", "--root", str(target)]) == 0

    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    written = {f for f in files if f.startswith(("_freeze/", "notebooks/", "course/measurements/"))}
    assert files - written == {"_quarto.yml", "course/a.qmd", "course/b.qmd", "index.qmd", "requirements-offline.txt"}
    assert {"_freeze/course/a/execute-results/html.json", "notebooks/a.ipynb", "notebooks/index.ipynb"} <= written
    assert not (target / "course/measurements/t/a/cpu-x.json").exists()      # the checkout's records stay there
    assert list((target / "course/measurements/t/a").glob("*.json"))          # measured into the root's own folder
    assert (source / "_freeze/course/a/execute-results/html.json").read_text() == '{"hash": "old"}'
    assert not (source / "notebooks").exists()
    assert cli.main(["check", "--root", str(target)]) == 1      # built on smoke: refused, saying why
