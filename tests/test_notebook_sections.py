"""A student notebook reads as the page: no repository path in it, links between weeks that work outside the
checkout, and the course's numbers beside the student's in one comparison per section at most, never one cell per
sentence."""
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lab.__main__ import site_pages
from lab.site import notebooks, write_notebooks
from lab.site.nbprose import Prose, page_link, section_heading
from lab.site.qmd import parse_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = [p for p in site_pages(ROOT) if notebooks.has_notebook(p, ROOT)]   # the class page has none
COMPARISON = "lab.display.student.show_values("
# What only the checkout has: a page's source (`course/01-fine-tuning.qmd`, a `.qmd` link), the freeze, a module's
# file in the repository (`lab/decide.py`), the course's records folder, and the old "generated from" line.
REPOSITORY_PATH = re.compile(r"\.qmd\b|\bcourse/[\w.-]|_freeze\b|\blab/[\w/]+\.py\b|generated from the course page")


def repository_paths(nb) -> list[str]:
    """Each cell's text around a repository path, 'cell 12: ...stored in `course/measurements/`...'."""
    return [f"cell {i}: {c.source[max(0, m.start() - 40):m.end() + 40]!r}" for i, c in enumerate(nb.cells)
            for m in REPOSITORY_PATH.finditer(c.source)]


def comparisons_per_section(nb) -> dict[str, int]:
    """The number of comparison cells under each section heading (the part before the first, "")."""
    counts, section = {}, ""
    for cell in nb.cells[1:]:                          # cell 0 is the notebook's own title and intro
        if cell.cell_type == "markdown":
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            if (heading := section_heading(first)) is not None:
                section = heading
        elif COMPARISON in cell.source:
            counts[section] = counts.get(section, 0) + 1
    return counts


def _crowded(nb) -> dict[str, int]:
    return {s: n for s, n in comparisons_per_section(nb).items() if n > 1}


def _values(monkeypatch, with_values: bool) -> None:
    every = {e.strip() for p in PAGES for c in parse_page(p, ROOT).cells for e in c.inline_expressions()}
    values = {e: f"V{i}" for i, e in enumerate(sorted(every))}
    monkeypatch.setattr(notebooks, "frozen_course_values",
                        lambda page, root: {"hardware": "CPU: X (2 cores)", "inline": values} if with_values else {})


@pytest.mark.parametrize("with_values", [True, False], ids=["course values recorded", "no freeze entry"])
def test_no_notebook_holds_a_repository_path_or_more_than_one_comparison_per_section(tmp_path, monkeypatch,
                                                                                   with_values):
    _values(monkeypatch, with_values)
    compared, paths, crowded = 0, {}, {}
    for path in write_notebooks(PAGES, ROOT, tmp_path, install_source="ecbs5200-lab @ git+https://example"):
        nb = nbformat.read(path, as_version=4)
        paths[path.name], crowded[path.name] = repository_paths(nb), _crowded(nb)
        compared += sum(comparisons_per_section(nb).values())
    assert {k: v for k, v in paths.items() if v} == {}, "reword the page's prose: a student has no checkout"
    assert {k: v for k, v in crowded.items() if v} == {}, "a value rebound within its section (see Comparisons)"
    assert compared >= len(PAGES)                      # the weeks do compare: the check has something to count


def _site(tmp_path: Path, body: str, quarto: str = "project:\n  type: website\n") -> Path:
    (tmp_path / "course").mkdir()
    (tmp_path / "_quarto.yml").write_text(quarto)
    (tmp_path / "course/p.qmd").write_text("---\ntitle: P\n---\n\n" + body)
    return Path("course/p.qmd")


ONE_SECTION = """\
```{python}
from lab.display import report
report.notebook_links("p")
x, y = 41, 42
```

It is `{python} x` here.

Said again: `{python} y`.

```{python}
z = 1
```

And `{python} z` too. **How long:** `{python} Markdown(sentence)`.

## Next

[Week 1](01-fine-tuning.qmd#sec-run) and [the index](../index.qmd).
"""


def test_a_section_gets_one_comparison_at_its_end_and_the_long_sentence_none(tmp_path):
    page = _site(tmp_path, ONE_SECTION)
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    compare = [c.source for c in nb.cells if COMPARISON in c.source]
    assert comparisons_per_section(nb) == {"": 1} and len(compare) == 1
    assert "x" in compare[0] and "y" in compare[0] and ", z)," in compare[0]
    assert "sentence" not in compare[0]                # the "How long" line is not echoed back as a string
    heading = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Next"))
    assert COMPARISON in nb.cells[heading - 1].source  # at the end of its section, before the next heading
    assert not any("notebook_links" in c.source for c in nb.cells)
    assert "[Week 1](01-fine-tuning.ipynb) and [the index](index.ipynb)." in nb.cells[heading].source
    assert repository_paths(nb) == []


def test_control_a_value_rebound_inside_its_section_forces_a_second_comparison_which_the_check_finds(tmp_path):
    # x changes before the section ends: its comparison must come first, so this section holds two
    page = _site(tmp_path, ONE_SECTION.replace("z = 1", "x = 0"))
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    assert _crowded(nb) == {"": 2}


def test_control_a_path_written_in_the_prose_is_found(tmp_path):
    page = _site(tmp_path, "See `course/01-fine-tuning.qmd` and `lab/decide.py`.\n")
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    found = " ".join(repository_paths(nb))
    assert "course/01-fine-tuning.qmd" in found and "lab/decide.py" in found


def test_with_a_site_address_links_go_to_the_site_pages(tmp_path):
    page = _site(tmp_path, ONE_SECTION, "project:\n  type: website\nwebsite:\n  site-url: https://x.io/c/\n")
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    text = "\n".join(c.source for c in nb.cells)
    assert "[Week 1](https://x.io/c/course/01-fine-tuning.html#sec-run)" in text
    assert "[the index](https://x.io/c/index.html)" in text
    assert page_link("https://example.org/x.qmd") == "x.ipynb"   # only ever called on a path; the regex skips URLs
    assert Prose(site_url=None).cell(["[a](https://example.org/x.qmd)"]) == "[a](https://example.org/x.qmd)"


def test_a_value_inside_an_answer_is_not_compared_outside_it(tmp_path):
    page = _site(tmp_path, "Q: what is x?\n\n::: {.callout-tip collapse=\"true\"}\n## Answer\n\n"
                           "It is `{python} x`.\n:::\n\nAnd `{python} y`.\n")
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    [compare] = [c.source for c in nb.cells if COMPARISON in c.source]
    assert ", y)," in compare and ", x)," not in compare


def test_each_value_is_named_by_the_words_around_it():
    lines = ["On `{python} n` test snippets the model is right `{python} acc` of the time."]
    assert notebooks.value_label(lines, "acc", {}) == "model is right … of the time."
    assert notebooks.value_label(lines, "n", {}) == "On … test snippets the"


def test_the_comparison_cell_prints_both_values_and_the_machine():
    code = notebooks.values_code("The run", [("right … of the time", "acc", "83.6%"), ("for … epochs", "n", None)])
    run = "\n".join(["import lab.display.student as s", "s.machine = lambda: 'CPU: Y (4 cores)'",
                     "acc, n = 0.8123, 3", code.replace("lab.display.student.show_values", "s.show_values")])
    out = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "under 'The run'" in out.stdout
    row = next(line for line in out.stdout.splitlines() if "right … of the time" in line)
    assert row.split()[-2:] == ["83.6%", "0.8123"]
    assert re.search(r"for … epochs\s+-\s+3", out.stdout) and "CPU: Y (4 cores)" in out.stdout


def test_the_page_links_to_its_notebook_by_stem_relative_to_its_folder(tmp_path, monkeypatch):
    from lab.display import report
    (tmp_path / "_quarto.yml").write_text("ecbs5200:\n  repo-url: https://github.com/o/r\n  branch: v1\n")
    (tmp_path / "course").mkdir()
    monkeypatch.chdir(tmp_path / "course")             # the kernel runs in the page's folder
    shown = report.notebook_links("01-fine-tuning").data
    assert "(../notebooks/01-fine-tuning.ipynb)" in shown
    assert "src=https://github.com/o/r/blob/v1/notebooks/01-fine-tuning.ipynb" in shown
    monkeypatch.chdir(tmp_path)
    assert "(notebooks/index.ipynb)" in report.notebook_links("index").data



def test_a_heading_inside_a_callout_that_spans_a_code_cell_starts_no_section(tmp_path):
    page = _site(tmp_path, "It is `{python} x`.\n\n::: {.callout-note}\nBefore.\n\n```{python}\nw = 2\n```\n\n"
                           "## Inside\n\nAnd `{python} y`.\n:::\n\n## After\n\nText.\n")
    nb = notebooks.notebook_for(page, tmp_path, "ecbs5200-lab")
    assert comparisons_per_section(nb) == {"": 1}
    [compare] = [c.source for c in nb.cells if COMPARISON in c.source]
    assert ", x)," in compare and ", y)," in compare
