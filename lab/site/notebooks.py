"""write_notebooks: one clean, unexecuted `.ipynb` per page, for students to run (e.g. on Kaggle).

Each notebook starts with
  1. a markdown cell: the page title and a note on where it comes from and how to start;
  2. `%pip install -q "<install source>"` to install the course package `lab`;
  3. a cell that reports the GPU (or its absence) and the python/torch/transformers/peft/
     onnxruntime versions, so a student's report says what it ran on;
then the page's own markdown and code cells in order. Code cells keep their `#|` options and
`include: false` cells are kept too (later cells need what they define). The front matter is
dropped: its title is in the first cell.

Inline `{python} expr` values cannot be shown before the notebook has run, so the prose keeps a
code span of the expression (`expr`) and a small code cell right after that markdown cell
prints each value: the text stays readable and the values appear where they are discussed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from .qmd import INLINE_EXPR, parse_page, split_cells, split_front_matter

ENVIRONMENT_CODE = '''\
# Which machine is this? (keep this output when you report results)
import importlib
import platform

try:
    import torch
    if torch.cuda.is_available():
        print("GPU:", torch.cuda.get_device_name(0), f"(CUDA {torch.version.cuda})")
    else:
        print("GPU: none (torch.cuda.is_available() is False): running on the CPU")
except ImportError:
    print("GPU: unknown (torch is not installed)")

print("python", platform.python_version())
for name in ("torch", "transformers", "peft", "onnxruntime"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError:
        print(name, "not installed")
'''


def _cell_id(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()[:8]


def _code_spans(line: str) -> str:
    return INLINE_EXPR.sub(lambda m: f"{m.group(1)}`{m.group(2).strip()}`", line)


def notebook_for(page_path: Path, root: Path, install_source: str) -> nbformat.NotebookNode:
    page = parse_page(page_path, root)
    v4 = nbformat.v4
    intro = (f"# {page.title}\n\n"
             f"> This notebook is generated from the course page `{page.rel}`. "
             "Run the first two cells first: they install the course package `lab` and report "
             "the GPU and library versions.")
    cells = [
        v4.new_markdown_cell(intro),
        v4.new_code_cell(f'%pip install -q "{install_source}"'),
        v4.new_code_cell(ENVIRONMENT_CODE.rstrip("\n")),
    ]
    # The page without its front matter (its title is in the first cell).
    for cell in split_cells(split_front_matter(page.text)[1]):
        if cell.kind == "code":
            cells.append(v4.new_code_cell(cell.source))
            continue
        cells.append(v4.new_markdown_cell("\n".join(_code_spans(line) for line in cell.lines)))
        expressions = list(dict.fromkeys(e.strip() for e in cell.inline_expressions()))
        if expressions:
            cells.append(v4.new_code_cell("\n".join(f"print({e!r}, '=', {e})" for e in expressions)))
    for index, cell in enumerate(cells):
        cell["id"] = _cell_id(f"{page.rel}:{index}")
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def notebook_name(page) -> str:
    """The student notebook's file name for a page: flat, by stem (course/01-fine-tuning.qmd -> 01-fine-tuning.ipynb).
    Pages link to it through lab.report.notebook_links, so both sides use this one function."""
    return f"{Path(page).stem}.ipynb"


def write_notebooks(pages: list[Path], root: Path, out_dir: Path, install_source: str) -> list[Path]:
    """Write `<out_dir>/<page stem>.ipynb` for each page; returns the paths written.

    Names are flat (Kaggle lists notebooks by name); two pages with the same stem are an error
    rather than one silently overwriting the other."""
    root, out_dir = Path(root).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    seen: dict[str, Path] = {}
    for page in pages:
        stem = Path(page).stem
        if stem in seen:
            raise ValueError(f"pages {seen[stem]} and {page} would both be written as {stem}.ipynb")
        seen[stem] = Path(page)
        nb = notebook_for(Path(page), root, install_source)
        target = out_dir / notebook_name(page)
        tmp = target.with_name(f".{target.name}.tmp")
        nbformat.write(nb, str(tmp))
        tmp.replace(target)
        written.append(target)
    return written
