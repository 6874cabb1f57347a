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


def shown_answer_cells(section: str) -> list[str]:
    """The executed `{python}` cells inside collapsed callouts that show something. A notebook cannot hold a code
    cell inside a <details> (lab.site.nbprose closes it before the cell), so such a cell's output would print the
    answer in the open; an answer's code that shows its result belongs in a ```python block the student runs."""
    import ast
    shown = []
    for callout in re.findall(r'(?ms)^::: \{[^}]*collapse="true"[^}]*\}\n(.*?)^:::$', section):
        for cell in re.findall(r"(?ms)^```\{python\}\n(.*?)^```$", callout):
            options = [line for line in cell.splitlines() if line.startswith("#|")]
            if any(re.match(r"#\|\s*output:\s*false", o) for o in options):
                continue
            tree = ast.parse(cell)
            prints = any(isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("print", "display")
                         for n in ast.walk(tree))
            if prints or any(isinstance(stmt, ast.Expr) for stmt in tree.body):
                shown.append(cell)
    return shown


@pytest.mark.parametrize("page", WEEKS, ids=lambda p: p.stem)
def test_no_answer_is_printed_outside_its_collapsed_callout_in_the_notebook(page):
    _, section = exercises(page.read_text(encoding="utf-8"))
    shown = shown_answer_cells(section)
    assert not shown, (f"{page.name}: a collapsed answer holds an executed cell that shows its result, which the "
                       f"notebook prints before the <details> meant to hide it; make it a ```python block:\n"
                       + "\n---\n".join(shown))


def test_an_answer_cell_that_shows_a_table_is_caught_and_a_silent_one_is_not():
    def callout(cell):
        return f'::: {{.callout-tip collapse="true"}}\n## Answer\n\n```{{python}}\n{cell}```\n\nText.\n:::\n'
    assert shown_answer_cells(callout("#| echo: false\nreport.table(rows)\n"))
    assert shown_answer_cells(callout("x = 1\nprint(x)\n"))
    assert not shown_answer_cells(callout("#| echo: false\nshare = a / b\n"))
    assert not shown_answer_cells(callout("#| output: false\nreport.table(rows)\n"))
