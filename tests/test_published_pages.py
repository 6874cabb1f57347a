"""What the frozen pages publish reads cleanly: no stderr, no warning, no local path, tables that keep their columns.

The committed `_freeze/` is what `quarto render` publishes unchanged, so it is checked as a reader would read it.
The controls are the faults real Quarto showed on this site before they were fixed.
"""
import json
from pathlib import Path

import pytest

from lab.display import report
from lab.site import check_published
from lab.site.check import published_problems

ROOT = Path(__file__).resolve().parent.parent
FROZEN = sorted((ROOT / "_freeze").glob("**/execute-results/html.json"))


@pytest.mark.parametrize("entry", FROZEN, ids=[p.parent.parent.relative_to(ROOT / "_freeze").as_posix() for p in FROZEN])
def test_committed_page_publishes_no_stderr_warning_local_path_or_broken_table(entry):
    assert published_problems(json.loads(entry.read_text())["result"]["markdown"]) == []


def test_there_are_frozen_pages_to_check():
    assert len(FROZEN) >= 8


# The stderr block Quarto published at the top of "Picking a model" before the fix, verbatim but for its length.
TQDM_BLOCK = """::: {.cell-output .cell-output-stderr}
```
/tmp/venvtest/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update
```
:::"""


def test_a_stderr_block_with_a_warning_and_a_local_path_is_caught():
    problems = published_problems(f"# Picking a model\n\n{TQDM_BLOCK}\n")
    assert [p.split(" ")[0:3] for p in problems] == [["a", "cell", "printed"], ["a", "warning", "on"],
                                                     ["a", "path", "of"]]


def test_a_table_whose_header_holds_a_pipe_is_caught_and_escaping_mends_it():
    rows = [{"route": "onnx-int8", "max |Δ logit|": 0.95, "where it ran": "CPU 100%"}]
    broken = "| route | max |Δ logit| | where it ran |\n|:--|--:|:--|\n| onnx-int8 | 0.95 | CPU 100% |"
    assert any("has 3 cells, its header 5" in p for p in published_problems(broken))   # the pipes made 5
    assert published_problems(report.markdown_table(rows)) == []
    assert "max \\|Δ logit\\|" in report.markdown_table(rows)


def test_a_clean_page_passes():
    assert published_problems("Accuracy was **0.83**.\n\n| a | b |\n|--:|--:|\n| 1 | 2 |\n") == []


def test_check_published_names_the_page(tmp_path):
    entry = tmp_path / "_freeze" / "index" / "execute-results"
    entry.mkdir(parents=True)
    (tmp_path / "index.qmd").write_text("---\ntitle: x\njupyter: python3\n---\n")
    (entry / "html.json").write_text(json.dumps({"hash": "", "result": {"markdown": TQDM_BLOCK}}))
    problems = check_published(tmp_path)
    assert problems and all(p.startswith("index.qmd: ") for p in problems)
