"""The package's layers (DESIGN.md): record machinery <- library <- recipes <- display <- site, no import cycle, and no
private name used across modules. The fingerprint rule rests on it: a record covers the library and its recipe only."""
from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import lab
from lab.record.fingerprint import lab_imports

PACKAGE = Path(lab.__file__).parent
REPO = PACKAGE.parent
LAYERS = ("record", "library", "recipes", "display", "site")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if module == "lab.__main__" or parts[1:2] == ["site"]:
        return LAYERS.index("site")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in ("record", "recipes", "display")):
        return LAYERS.index({"record": "record", "recipes": "recipes", "display": "display"}[parts[1]])
    return LAYERS.index("library")


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if module_name(p) != "lab"}


def imports() -> dict[str, set[str]]:
    """Every lab module each module imports, lazy imports included (the walk the fingerprint uses)."""
    return {name: {m for m in lab_imports(name, path) if m != "lab"} for name, path in modules().items()}


def test_every_import_points_down_the_layers():
    wrong = [f"{a} ({LAYERS[layer(a)]}) imports {b} ({LAYERS[layer(b)]})"
             for a, deps in imports().items() for b in sorted(deps) if layer(b) > layer(a)]
    assert not wrong, "imports that run back up the layers:\n" + "\n".join(wrong)


def test_the_layer_test_catches_an_import_that_runs_up():
    # the control: the library importing the display layer is what the rule forbids
    assert layer("lab.display.report") > layer("lab.train") > layer("lab.record.store")
    assert layer("lab.site.render") > layer("lab.display.week4") > layer("lab.recipes.week4") > layer("lab.quantize")


def test_there_is_no_import_cycle():
    graph = {a: {b for b in deps if b in modules()} for a, deps in imports().items()}
    graphlib.TopologicalSorter(graph).prepare()      # raises CycleError, naming the cycle


def test_the_cycle_check_can_fail():
    try:
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("a two-module cycle went unnoticed")


def private_names_across_modules(source: str, own: str) -> list[str]:
    """`mod._name` or `from lab.x import _name` where mod is another lab module."""
    tree = ast.parse(source)
    aliases, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lab.") and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lab") and node.level == 0:
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"from {node.module} import {a.name}")
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__") \
                and aliases[node.value.id] != own:
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    bad = {name: hits for name, path in modules().items()
           if (hits := private_names_across_modules(path.read_text(), name))}
    assert not bad, bad


def test_the_private_name_check_can_fail():
    assert private_names_across_modules("from lab import train\ntrain._step(1)\n", "lab.other") == ["train._step"]
    assert private_names_across_modules("from lab.site.markdown import _inline_value\n", "x") == \
        ["from lab.site.markdown import _inline_value"]


def page_code(path: Path) -> str:
    """The Python of a page's cells."""
    return "\n".join(re.findall(r"^```\{python\}\n(.*?)^```", path.read_text(), flags=re.S | re.M))


def test_pages_use_public_names_only():
    bad = {p.name: hits for p in sorted([*REPO.glob("course/*.qmd"), REPO / "index.qmd"])
           if (hits := private_names_across_modules(page_code(p), "__page__"))}
    assert not bad, bad
