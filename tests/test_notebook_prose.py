"""Student notebooks read as notebooks: prose shows values (the course's), not template code; callouts become
Markdown that Jupyter renders; the course's numbers travel inside the notebook."""
import json
import re
from pathlib import Path

import pytest

from lab.__main__ import site_pages
from lab.site import notebooks, write_notebooks
from lab.site.nbprose import MISSING, Prose, plain
from lab.site.qmd import parse_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = site_pages(ROOT)
TEMPLATE_CODE = [re.compile(p) for p in (r"\{python\}", r"^\s*:::", r"""\w\[["']\w+["']\]""", r"""f['"][^'"]*\{""",
                                          r"report\.\w+\(")]


def _markdown(nb_path: Path) -> list[str]:
    nb = json.loads(Path(nb_path).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _template_code(text: str, expressions: set[str]) -> list[str]:
    # A fenced block is code the student is asked to type (an exercise's check call), not a value's place.
    text = re.sub(r"^([ \t]*)```.*?^\1```", "", text, flags=re.M | re.S)
    found = [e for e in expressions if re.search(r"[\[\](){}.'\"]", e) and e in text]   # `passed` is also a word
    for line in text.splitlines():
        found += [line for pattern in TEMPLATE_CODE if pattern.search(line)]
    return found


@pytest.mark.parametrize("with_values", [True, False], ids=["course values recorded", "no freeze entry"])
def test_no_markdown_cell_of_any_notebook_shows_template_code(tmp_path, monkeypatch, with_values):
    pages = {page: parse_page(page, ROOT) for page in PAGES}
    every = {e.strip() for p in pages.values() for c in p.cells for e in c.inline_expressions()}
    assert len(every) > 50                                   # the pages do write values into their prose
    values = {e: f"VALUE{i}" for i, e in enumerate(sorted(every))}
    monkeypatch.setattr(notebooks, "frozen_course_values",
                        lambda page, root: {"hardware": "CPU: X (2 cores)", "inline": values} if with_values else {})
    for nb_path in write_notebooks(PAGES, ROOT, tmp_path, install_source="ecbs5200-lab @ git+https://example"):
        markdown = "\n".join(_markdown(nb_path))
        assert _template_code(markdown, every) == [], nb_path.name
        if with_values:
            assert MISSING not in markdown and "VALUE" in markdown or nb_path.stem == "index", nb_path.name


def test_each_value_sits_where_its_expression_was_and_the_sections_comparison_shows_the_students(tmp_path,
                                                                                                 monkeypatch):
    page = ROOT / "course/04-quantization.qmd"
    expressions = [e.strip() for c in parse_page(page, ROOT).cells for e in c.inline_expressions()]
    values = {e: f"V{i}\\_x" for i, e in enumerate(dict.fromkeys(expressions))}   # Markdown-escaped, as frozen
    monkeypatch.setattr(notebooks, "frozen_course_values", lambda p, root: {"inline": values})
    nb = notebooks.notebook_for(page, ROOT, "ecbs5200-lab")
    cells, compared = nb.cells, 0
    for i, cell in enumerate(cells):
        shown = {e for e, v in values.items() if v in cell.source} if cell.cell_type == "markdown" else set()
        shown = {e for e in shown if notebooks.comparable(e, values[e]) and "<details>" not in cell.source}
        if not shown:
            continue
        earlier = "".join(c.source for c in cells[:i] if "show_values(" in c.source)
        follow = next(c.source for c in cells[i + 1:] if "lab.display.student.show_values(" in c.source)
        for e in shown - {e for e in shown if f", {e})," in earlier}:
            assert f"{plain(values[e])!r}, {e})," in follow      # the course's plain value, then the run's
            compared += 1
    assert compared > 10


def test_a_callout_becomes_a_blockquote_and_a_collapsed_one_a_details_element():
    prose = Prose({"x": "42"})
    quote = prose.cell(['::: {.callout-note title="Why"}', "Because `{python} x`.", ":::", "After."])
    assert quote.splitlines() == ["> **Why**", ">", "> Because 42.", "", "After."]
    details = prose.cell(['::: {.callout-tip collapse="true"}', "## Answer {#sec-a}", "", "It is **42**.", ":::"])
    assert details.splitlines() == ["<details><summary>Answer</summary>", "", "It is **42**.", "", "</details>"]
    plain_kind = prose.cell(["::: {.callout-warning}", "Careful.", ":::"])
    assert plain_kind.splitlines()[0] == "> **Warning**"
    div = prose.cell(["::: {.column-margin}", "Aside [text]{.smallcaps}.", ":::"])
    assert div == "Aside text."


def test_a_collapsed_callout_around_a_code_cell_is_closed_and_reopened_around_it():
    prose = Prose()
    before = prose.cell(["Question?", "", '::: {.callout-tip collapse="true"}', "## Answer"])
    after = prose.cell(["It is shape arithmetic.", ":::"])
    assert before == "Question?"                                # nothing of the answer yet: no empty <details>
    assert after.splitlines()[0] == "<details><summary>Answer</summary>"
    assert after.splitlines()[-1] == "</details>"
    prose = Prose()
    first = prose.cell(['::: {.callout-tip collapse="true"}', "## Answer", "Part one."])
    second = prose.cell(["Part two.", ":::"])
    assert first.splitlines()[-1] == "</details>"
    assert second.splitlines()[0] == "<details><summary>Answer (continued)</summary>"


def test_without_a_recorded_value_the_prose_points_at_the_values_cell():
    assert Prose().cell(["We fine-tune **`{python} r['model']['key']`**."]) == f"We fine-tune **{MISSING}**."


def test_a_stale_freeze_entry_gives_no_values(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course/p.qmd").write_text("---\ntitle: P\n---\n\nIt is `{python} x`.\n")
    entry = tmp_path / "_freeze/course/p/execute-results"
    entry.mkdir(parents=True)
    page = parse_page(Path("course/p.qmd"), tmp_path)
    course = {"hardware": "CPU: X (2 cores)", "inline": {"x": "42"}}
    entry.joinpath("html.json").write_text(json.dumps({"hash": page.hash, "result": {}, "lab": {"course": course}}))
    assert notebooks.frozen_course_values(page, tmp_path) == course
    entry.joinpath("html.json").write_text(json.dumps({"hash": "0" * 32, "result": {}, "lab": {"course": course}}))
    assert notebooks.frozen_course_values(page, tmp_path) == {}
