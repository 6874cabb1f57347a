"""What a reader sees on the site, checked without a browser: tables that name the machine once and head their
columns in words, code that keeps its straight quotes, figures no wider than the column, and the site settings
that give pages previous/next links, maths that needs no CDN, and figures that shrink on a phone.

The checks on `_freeze/` read the committed pages as published; each has a control made of the fault as it was.
"""
import json
import re
from pathlib import Path

import pytest
import yaml


from lab.display import report
from lab.display import week2 as show2
from lab.display import week6 as show6

ROOT = Path(__file__).resolve().parent.parent
FROZEN = sorted((ROOT / "_freeze").glob("**/execute-results/html.json"))
IDS = [p.parent.parent.relative_to(ROOT / "_freeze").as_posix() for p in FROZEN]
CPU = "CPU: Intel(R) Xeon(R) Processor (2 cores)"


def frozen(entry: Path) -> str:
    return json.loads(entry.read_text())["result"]["markdown"]


# ---------------------------------------------------------------- what the checks look for

def table_headers(markdown: str) -> list[list[str]]:
    """The header cells of every pipe table (a row followed by a delimiter row)."""
    lines = markdown.splitlines()
    return [[c.strip() for c in re.split(r"(?<!\\)\|", lines[i])[1:-1]]
            for i in range(len(lines) - 1) if lines[i].startswith("|") and re.fullmatch(r"\|[-:| ]+\|", lines[i + 1])]


def raw_keys(markdown: str) -> list[str]:
    """Headers that are a program's dict key (`latency_ms`), not words; a name in backticks is code, and fine."""
    return [h for head in table_headers(markdown) for h in head if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)]


def prose_without_code(markdown: str) -> str:
    """The markdown less code blocks and code spans: what pandoc's smart typography will set."""
    # a fence may be indented, inside a list item (an exercise's code)
    return re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^([ \t]*)```.*?^\1```", "", markdown))


def quoted_literals(markdown: str) -> list[str]:
    """Python literals with quotes (`x=['a']`, `["a"]`) outside code: the site shows their quotes curly."""
    return re.findall(r"""[\w\\]+=\\?\[\\?['"][^\]]*\]|\\?\[\\?['"]\w+\\?['"]\\?\]""", prose_without_code(markdown))


def repeated_machine(markdown: str) -> list[str]:
    """Machine columns (hardware, measured on) holding one value in every one of two or more rows."""
    lines, found = markdown.splitlines(), []
    for i in range(len(lines) - 1):
        if lines[i].startswith("|") and re.fullmatch(r"\|[-:| ]+\|", lines[i + 1]):
            head = [c.strip() for c in lines[i].split("|")[1:-1]]
            rows = []
            for line in lines[i + 2:]:
                if not line.startswith("|"):
                    break
                rows.append([c.strip() for c in line.split("|")[1:-1]])
            for k, h in enumerate(head):
                if h in report.SAID_ONCE and len(rows) > 1 and len({r[k] for r in rows if k < len(r)}) == 1:
                    found.append(f"{h}: {rows[0][k]}")
    return found


def figure_widths(markdown: str) -> list[int]:
    """The widths, in CSS pixels, Quarto gives the page's figures (from the retina PNG, pixels / 2)."""
    return [int(w) for w in re.findall(r"\]\([^)]*figure-html/[^)]*\.png\)\{[^}]*\bwidth=(\d+)", markdown)]


# ---------------------------------------------------------------- tables

def test_a_machine_shared_by_every_row_is_said_once_above_the_table():
    rows = [{"measurement": "week1/finetune", "hardware": CPU, "date": "28 Nov 2026"},
            {"measurement": "week4/routes", "hardware": CPU, "date": "29 Nov 2026"}]
    md = report.markdown_table(rows)
    assert md.startswith(f"Hardware: **{CPU}**.\n\n| measurement")
    assert md.count(CPU) == 1 and repeated_machine(md) == []


def test_rows_from_two_machines_keep_their_machine_column():
    rows = [{"route": "onnx-int8", "hardware": CPU}, {"route": "onnx-int8", "hardware": "GPU: Tesla T4"}]
    md = report.markdown_table(rows)
    assert md.startswith("| route") and table_headers(md) == [["route", "hardware"]]


def test_a_single_row_keeps_its_machine_in_the_table():
    assert table_headers(report.markdown_table([{"route": "onnx-int8", "hardware": CPU}])) == [["route", "hardware"]]


def test_the_old_provenance_table_is_caught_repeating_its_machine():
    md = report.markdown_table([{"measurement": "a", "hardware": CPU}, {"measurement": "b", "hardware": CPU}], once=())
    assert repeated_machine(md) == [f"hardware: {CPU}"]


def test_provenance_dates_are_short_and_do_not_break():
    rec = {"name": "week1/finetune", "wall_s": 203.0,
           "provenance": {"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2,
                          "date": "2026-11-28T23:54:16+00:00", "git": {"commit": "1b9e4343abcdef", "dirty": False},
                          "libraries": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}}}
    row = report.provenance_rows([rec])[0]
    assert row["date"] == "28\u00a0Nov\u00a02026" and row["commit"] == "1b9e4343"
    assert report.short_date("2026-03-05T01:00:00+00:00") == "5\u00a0Mar\u00a02026" and report.short_date(None) == ""


def test_week6_recommendations_are_headed_in_words_with_units():
    pick = {"deployment": "phone app", "batch": 1, "budget": "100 MB", "ship": "distilled student, ONNX Runtime int8",
            "accuracy": 0.7617, "latency": {"median_ms": 1.23, "p10_ms": 1.2, "p90_ms": 1.3}, "size_mb": 15.94,
            "fit the budget": "2 of 6", "measured on": "CPU: Some CPU (2 cores)"}
    md = report.markdown_table(show6.recommendation_rows([pick]))
    assert raw_keys(md) == []
    assert table_headers(md)[0][1] == "measured on"
    assert table_headers(md)[0][5:8] == ["test accuracy", "latency (ms, p10–p90)", "size (MB)"]
    assert "| 1.23 (1.2–1.3) " in md and " 15.9 |" in md


def test_the_old_recommendation_headers_are_caught_as_raw_keys():
    assert raw_keys(report.markdown_table([{"deployment": "x", "latency_ms": 1.2, "size_mb": 3.4}])) == \
        ["latency_ms", "size_mb"]


def test_week2_trap_table_shows_peft_argument_as_code():
    trap = {"rows": [{"modules_to_save": ["classifier", "score"], "trap": {"unsaved": ["pooler.dense.bias"],
                                                                         "pass": False},
                      "reload": {"pass": False, "max_abs_diff": 0.0187}}]}
    md = report.markdown_table(show2.trap_rows(trap))
    assert table_headers(md)[0][0] == "`modules_to_save`" and raw_keys(md) == []


# ---------------------------------------------------------------- quotes

MESSAGE = ("pooler: initialised at random when the base loads, and not saved with the adapter (pooler.dense.bias). "
           "A reload puts the adapter on other random weights. Fix: LoRA with modules_to_save=['pooler'], so peft "
           "trains and saves it in full.")


def test_week2_trap_message_shows_its_fix_as_code():
    md = show2.trap_message({"message": MESSAGE}).data
    assert "`modules_to_save=['pooler']`" in md and quoted_literals(md) == []


def test_the_fix_quoted_as_plain_text_is_caught():
    # what the page published: the message as an escaped plain string, quotes left to pandoc's typography
    assert quoted_literals(r"> Fix: LoRA with modules\_to\_save=\['pooler'\]\, so peft") == [r"modules\_to\_save=\['pooler'\]"]
    assert quoted_literals('With `modules_to_save=["pooler"]` the pooler is trained') == []


# ---------------------------------------------------------------- the committed pages (after a re-freeze)

@pytest.mark.parametrize("entry", FROZEN, ids=IDS)
def test_frozen_page_heads_no_column_with_a_raw_key(entry):
    assert raw_keys(frozen(entry)) == []


@pytest.mark.parametrize("entry", FROZEN, ids=IDS)
def test_frozen_page_quotes_no_python_literal_outside_code(entry):
    assert quoted_literals(frozen(entry)) == []


@pytest.mark.parametrize("entry", FROZEN, ids=IDS)
def test_frozen_page_names_its_machine_once_per_table(entry):
    assert repeated_machine(frozen(entry)) == []


@pytest.mark.parametrize("entry", FROZEN, ids=IDS)
def test_frozen_figures_fit_the_column(entry):
    # Quarto's retina figure width is (PNG pixels / 2) CSS px; a tight bbox can only be narrower than fig-width
    assert all(w <= report.FIG_WIDTH_IN * 96 for w in figure_widths(frozen(entry))), figure_widths(frozen(entry))


def test_a_figure_wider_than_the_column_is_caught():
    md = "![cap](06-verification_files/figure-html/fig-pareto-output-1.png){#fig-pareto width=803 height=374}"
    assert figure_widths(md) == [803] and 803 > report.FIG_WIDTH_IN * 96


# ---------------------------------------------------------------- site settings

def test_site_links_pages_in_turn_and_sets_maths_without_a_cdn():
    cfg = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    html = cfg["format"]["html"]
    assert cfg["website"]["page-navigation"] is True
    # mathml: pandoc writes it when rendering, the browser draws it; mathjax/katex by default load from a CDN
    assert html.get("html-math-method") == "mathml"
    assert (ROOT / html["css"]).is_file()


def test_site_stylesheet_shrinks_figures_wraps_inline_code_and_holds_the_column():
    css = (ROOT / "styles.css").read_text()
    rules = {sel.strip(): body for sels, body in re.findall(r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S))
             for sel in sels.split(",")}
    assert "max-width: 100%" in rules[".cell-output-display img"] and "height: auto" in rules[".cell-output-display img"]
    assert "overflow-wrap: anywhere" in rules["p code:not(.sourceCode)"]
    assert "min-width: 0" in rules["main.content"]


def css_rules(css: str) -> dict[tuple[str, str], str]:
    """(media query or "", selector) -> declarations, for a flat stylesheet with @media blocks one level deep."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = {}
    for media, inner in re.findall(r"@media([^{]*)\{((?:[^{}]*\{[^}]*\})*)\s*\}", css):
        for sels, body in re.findall(r"([^{}]+)\{([^}]*)\}", inner):
            rules.update({(media.strip(), s.strip()): body for s in sels.split(",")})
    flat = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^}]*\})*\s*\}", "", css)
    for sels, body in re.findall(r"([^{}]+)\{([^}]*)\}", flat):
        rules.update({("", s.strip()): body for s in sels.split(",")})
    return rules


PHONE = "(max-width: 575.98px)"


def phone_faults(css: str) -> list[str]:
    """What issue #29 saw at 390 px that the stylesheet does not prevent: code cut at the edge, table cells broken
    inside a token, a scrolling table with no sign of it, sidebar entries cut off."""
    rules = css_rules(css)
    get = lambda sel, media="": rules.get((media, sel), "")     # noqa: E731
    faults = []
    if "pre-wrap" not in get("#quarto-document-content pre > code"):
        faults.append("code blocks do not wrap")
    if "text-indent: -" not in get("#quarto-document-content pre > code.sourceCode > span"):
        faults.append("a wrapped code line has no hanging indent")
    if "nowrap" not in get(".cell-output-display td:not(:last-child)", PHONE):
        faults.append("table cells break inside tokens on a phone")
    if "local" not in get(".cell-output-display:has(table)"):
        faults.append("a scrolling table shows no shadow")
    if "white-space: normal" not in get(".sidebar-item-text"):
        faults.append("sidebar entries do not wrap")
    return faults


def test_site_stylesheet_wraps_code_keeps_table_tokens_whole_and_marks_scrolling_tables():
    assert phone_faults((ROOT / "styles.css").read_text()) == []
    assert yaml.safe_load((ROOT / "_quarto.yml").read_text())["format"]["html"]["code-overflow"] == "wrap"


def test_the_old_stylesheet_is_caught_cutting_code_and_tables_on_a_phone():
    old = """.cell-output-display:has(table) { overflow-x: auto; }
             td code:not(.sourceCode) { overflow-wrap: anywhere; white-space: normal; }"""
    assert phone_faults(old) == ["code blocks do not wrap", "a wrapped code line has no hanging indent",
                                 "table cells break inside tokens on a phone", "a scrolling table shows no shadow",
                                 "sidebar entries do not wrap"]
