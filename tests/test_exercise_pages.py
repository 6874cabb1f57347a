"""Every week has at least two exercises, and each ends in something a student can check: a lab checker
(lab.display.exercises.check_...), a lab call that says right or wrong, or an answer in a collapsed callout."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WEEKS = sorted((REPO / "course").glob("0*.qmd"))
CHECKS = ("exercises.check_", "strict=True", "capstone.pareto(")       # lab code that answers right or wrong


def exercises(page_source: str) -> tuple[list[str], str]:
    """The numbered exercises of a page's Exercises section (the page's last: an answer callout's own "## Answer"
    title would end it early otherwise), and the section's text."""
    section = page_source.split("## Exercise", 1)[1]
    items = re.split(r"(?m)^(?=\d+\. )", section)[1:]
    return items, section


def checkable(n: int, item: str, section: str) -> bool:
    answers = re.findall(r'::: \{\.callout-tip collapse="true"\}\n## (Answer(?: to (\d+))?)', section)
    return any(c in item for c in CHECKS) or any(num in ("", str(n)) for _, num in answers)


@pytest.mark.parametrize("page", WEEKS, ids=lambda p: p.stem)
def test_every_week_has_two_exercises_each_ending_in_a_check(page):
    items, section = exercises(page.read_text(encoding="utf-8"))
    assert len(items) >= 2, f"{page.name}: {len(items)} exercise(s); a week needs at least two"
    unchecked = [n for n, item in enumerate(items, 1) if not checkable(n, item, section)]
    assert not unchecked, f"{page.name}: exercise(s) {unchecked} end in nothing a student can check"


def test_an_exercise_without_checker_or_answer_is_caught():
    items, section = exercises("## Exercises\n\n1. Think about it.\n2. Check `exercises.check_ece(a, p, y)`.\n")
    assert [checkable(n, i, section) for n, i in enumerate(items, 1)] == [False, True]
    answered = section + '\n::: {.callout-tip collapse="true"}\n## Answer to 1\n\nYes.\n:::\n'
    assert checkable(1, items[0], answered)



def answer_cells(section: str) -> list[str]:
    """The executed `{python}` cells inside collapsed callouts. A notebook cannot hold a code cell inside a
    <details> (lab.site.nbprose closes it before the cell and opens it again after), so such a cell, its code and
    whatever it prints stand in the open, above the answer they were meant to sit in. An answer's code belongs in
    a ```python block (the student runs it), its numbers in inline expressions (shown inside the <details>)."""
    cells = []
    for callout in re.findall(r'(?ms)^::: \{[^}]*collapse="true"[^}]*\}\n(.*?)^:::$', section):
        cells += re.findall(r"(?ms)^```\{python\}\n(.*?)^```$", callout)
    return cells


@pytest.mark.parametrize("page", WEEKS, ids=lambda p: p.stem)
def test_no_answer_stands_outside_its_collapsed_callout_in_the_notebook(page):
    _, section = exercises(page.read_text(encoding="utf-8"))
    cells = answer_cells(section)
    assert not cells, (f"{page.name}: a collapsed answer holds an executed cell, which the notebook shows (with "
                       f"its output) before the <details> meant to hide it; make it a ```python block, or an "
                       f"inline expression:\n" + "\n---\n".join(cells))


def test_an_executed_cell_in_a_collapsed_answer_is_caught_and_a_python_block_is_not():
    def callout(code, fence):
        return f'::: {{.callout-tip collapse="true"}}\n## Answer\n\n```{fence}\n{code}```\n\nText.\n:::\n'
    assert answer_cells(callout("#| echo: false\nreport.table(rows)\n", "{python}"))
    assert not answer_cells(callout("report.table(rows)\n", "python"))
    assert not answer_cells('::: {.callout-note}\n```{python}\nx = 1\n```\n:::\n')      # not collapsed
