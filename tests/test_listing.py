"""Code on the page comes from lab: the listing helper shows exactly the current source, and every frozen page's
listed blocks equal the current source of the functions they name."""
from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest

from lab import data, errors, runtime, train
from lab.display import listing

REPO = Path(__file__).resolve().parent.parent
FROZEN = sorted((REPO / "_freeze").glob("**/execute-results/html.json"))
WEEKS = [p for p in FROZEN if p.parts[-3].startswith("0")]          # _freeze/course/0N-topic/execute-results/...


def _markdown(html_json: Path) -> str:
    return json.loads(html_json.read_text(encoding="utf-8"))["result"]["markdown"]


def test_listing_shows_exactly_the_source_inspect_reads():
    md = listing.markdown(data.batch_order)
    assert md.startswith("**`lab.data.batch_order`** (`lab/data.py`, line ")
    assert listing.blocks(md) == [("lab.data.batch_order", inspect.getsource(data.batch_order))]


def test_a_method_is_shown_dedented_under_its_qualified_name():
    (name, code), = listing.blocks(listing.markdown(runtime.Placement.rows))
    assert name == "lab.runtime.Placement.rows"
    assert code == textwrap.dedent(inspect.getsource(runtime.Placement.rows)) and code.startswith("def rows")
    assert listing.resolve(name) is runtime.Placement.rows


def test_several_listings_in_one_output_read_back_in_order():
    md = listing.show(errors.ece, train.step).data
    assert [n for n, _ in listing.blocks(md)] == ["lab.errors.ece", "lab.train.step"]


def test_code_holding_a_fence_gets_a_longer_one():
    def shown():
        """```python
        x = 1
        ```"""
    shown.__module__, shown.__qualname__ = "lab.fake", "shown"
    md = listing.markdown(shown)
    assert "\n````python\n" in md and md.endswith("````")
    assert listing.blocks(md)[0][1] == textwrap.dedent(inspect.getsource(shown))


def test_a_function_outside_lab_is_refused_by_name():
    with pytest.raises(ValueError, match="is not part of lab.*json"):
        listing.source(json.dumps)


def test_a_stale_block_is_told_apart_from_the_current_source():
    """The control for the frozen-page test below: a block edited after freezing no longer equals the source."""
    md = listing.markdown(errors.ece).replace("float(sum", "float(max")
    (name, code), = listing.blocks(md)
    assert code != listing.source(listing.resolve(name))


@pytest.mark.parametrize("html_json", WEEKS, ids=lambda p: p.parts[-3])
def test_every_week_shows_lab_code_equal_to_its_current_source(html_json):
    """Passes once the pages are re-frozen after the listings were added (the lead re-freezes)."""
    found = listing.blocks(_markdown(html_json))
    assert found, f"{html_json.relative_to(REPO)} shows no code block taken from lab (listing.show)"
    for name, code in found:
        assert code == listing.source(listing.resolve(name)), \
            f"{html_json.relative_to(REPO)}: the block for {name} differs from its current source (re-render the page)"
