"""The code a student sees on a week's page is the machine learning, and it is the measurement's own steps.

Read from every week's frozen page (the cells Quarto shows: ``` {.python .cell-code}):
- no record-keeping in sight: no `measured(`, `records_used`, `quantize_report`, and no underscore name;
- each week shows its steps (issue 28, item 1): week 1 loads, trains, evaluates, saves and reloads; ...;
- every visible call into lab's library is a step that some record's recipe takes, found by following the recipes'
  calls through the library (so the page cannot show a procedure that the numbers did not come from). The analyses
  that pages run on records (lab.errors, lab.capstone, lab.decide) are exempt: no recipe computes them.
"""
from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FROZEN = {p.parts[-3]: p for p in sorted((REPO / "_freeze" / "course").glob("0*/execute-results/html.json"))}
SHOWN = re.compile(r"``` \{\.python \.cell-code\}\n(.*?)\n```", re.S)
FORBIDDEN = ("measured(", "records_used", "quantize_report")
WIDTH = 88          # characters of code that fit the page's column at 1280 px (wider lines are cut off)
ANALYSES = {"lab.errors", "lab.capstone", "lab.decide"}      # computed on records, by the page: no recipe runs them

# Issue 28, item 1: the calls each week must show (module.function, as the page imports the module).
STEPS = {
    "01-fine-tuning": ["data.load_splits", "models.load", "train.train", "train.evaluate", "checkpoint.latest",
                       "checkpoint.load"],
    "02-lora": ["lora.wrap", "train.train", "train.evaluate", "lora.save", "lora.load"],
    "03-error-analysis": ["train.finetuned", "lora.adapted", "train.evaluate", "errors.confidently_wrong",
                          "errors.ece", "errors.slice_test"],
    "04-quantization": ["quantize.export_onnx", "quantize.quantize_onnx", "runtime.session", "bench.interleaved",
                        "runtime.profile_placement"],
    "05-distillation": ["distill.teacher_logits", "distill.loss_fn", "train.train", "train.evaluate"],
    "06-verification": ["capstone.variants", "capstone.pareto", "capstone.recommend"],
}


def shown_code(week: str) -> list[str]:
    markdown = json.loads(FROZEN[week].read_text(encoding="utf-8"))["result"]["markdown"]
    return SHOWN.findall(markdown)


def lab_aliases(tree: ast.AST) -> dict[str, str]:
    """{local name: 'lab.module'} for `from lab import x [as y]` and `from lab.pkg import x as y`."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lab":
            for a in node.names:
                target = f"{node.module}.{a.name}"
                try:
                    importlib.import_module(target)
                except ModuleNotFoundError:
                    continue             # a function or constant, not a module
                names[a.asname or a.name] = target
    return names


def calls(tree: ast.AST, aliases: dict[str, str]) -> list[tuple[str, str]]:
    """(module, attribute) for every `alias.attr(...)` call whose alias is a lab module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in aliases:
            out.append((aliases[node.func.value.id], node.func.attr))
    return out


def underscore_names(tree: ast.AST) -> list[str]:
    """Private names (`_step`, `x._cache`); a bare `_`, the throwaway of an unpacking, is not one."""
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith("_") and n.id != "_"]
    found += [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")]
    return found


@functools.lru_cache(maxsize=None)
def recipe_steps(depth: int = 4) -> set[tuple[str, str]]:
    """Every (module, function) reachable from the recipes' functions through lab's library, `depth` calls deep."""
    seen: set[tuple[str, str]] = set()
    frontier = []
    for path in sorted((REPO / "lab" / "recipes").glob("*.py")):
        module = f"lab.recipes.{path.stem}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        frontier += calls(tree, lab_aliases(tree))
        frontier += [(module, n.func.id) for n in ast.walk(tree)
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    for _ in range(depth):
        nxt = []
        for module, name in frontier:
            if (module, name) in seen:
                continue
            seen.add((module, name))
            obj = getattr(importlib.import_module(module), name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            mod_tree = ast.parse(inspect.getsource(importlib.import_module(module)))
            aliases = lab_aliases(mod_tree)
            body = ast.parse(inspect.getsource(obj).lstrip() if not inspect.isclass(obj) else "pass")
            nxt += calls(body, aliases)
            nxt += [(module, n.func.id) for n in ast.walk(body)
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
            # code run in a child process (lab.lora.RELOAD_CHILD, by scratch.python): its calls are steps too
            for n in ast.walk(body):
                child = getattr(importlib.import_module(module), n.id, None) if isinstance(n, ast.Name) else None
                if isinstance(child, str) and "from lab import" in child:
                    child_tree = ast.parse(child)
                    nxt += calls(child_tree, lab_aliases(child_tree))
        frontier = nxt
    return seen


def page_aliases(week: str) -> dict[str, str]:
    """The page's own imports, hidden cells included: how its visible names map to lab modules."""
    source = (REPO / "course" / f"{week}.qmd").read_text(encoding="utf-8")
    cells = re.findall(r"```\{python\}\n(.*?)\n```", source, re.S)
    return lab_aliases(ast.parse("\n".join(c for c in cells)))


@pytest.mark.parametrize("week", sorted(STEPS))
def test_the_visible_code_holds_no_record_keeping_no_private_name_and_fits_the_column(week):
    code = shown_code(week)
    assert code, f"{week}: the frozen page shows no code"
    for cell in code:
        assert not [f for f in FORBIDDEN if f in cell], f"{week}: record-keeping in a visible cell:\n{cell}"
        assert not underscore_names(ast.parse(cell)), f"{week}: an underscore name in a visible cell:\n{cell}"
        wide = [line for line in cell.splitlines() if len(line) > WIDTH]
        assert not wide, f"{week}: visible lines over {WIDTH} characters (cut off on the page): {wide}"


@pytest.mark.parametrize("week", sorted(STEPS))
def test_each_week_shows_its_steps(week):
    aliases = page_aliases(week)
    shown = {f"{m.rsplit('.', 1)[1]}.{f}" for cell in shown_code(week) for m, f in calls(ast.parse(cell), aliases)}
    missing = [s for s in STEPS[week] if s not in shown]
    assert not missing, f"{week}: the visible cells never call {missing}"


@pytest.mark.parametrize("week", sorted(STEPS))
def test_every_visible_lab_step_is_one_a_recipe_takes(week):
    aliases, steps = page_aliases(week), recipe_steps()
    library = [(m, f) for cell in shown_code(week) for m, f in calls(ast.parse(cell), aliases)
               if not m.startswith(("lab.display", "lab.record", "lab.site"))]
    foreign = [f"{m}.{f}" for m, f in library if m not in ANALYSES and (m, f) not in steps]
    assert not foreign, f"{week}: visible steps that no recipe takes: {foreign}"


def test_a_step_no_recipe_takes_is_caught():
    # control: static quantization is in no recipe; training is
    steps = recipe_steps()
    assert ("lab.train", "train") in steps and ("lab.quantize", "export_onnx") in steps
    assert ("lab.quantize", "static_int8") not in steps
    tree = ast.parse("from lab import quantize\nquantize.static_int8(model)\nx._secret\na, _ = 1, 2")
    assert calls(tree, lab_aliases(tree)) == [("lab.quantize", "static_int8")]
    assert underscore_names(tree) == ["_secret"]
