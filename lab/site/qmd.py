"""Parse a Quarto `.qmd` page into the cells Quarto's jupyter engine would see.

Quarto turns a `.qmd` into a transient notebook before executing it (quartoMdToJupyter in
quarto-cli's src/core/jupyter/jupyter.ts). The shape of that notebook (where one markdown cell
ends and the next begins, which lines are trimmed) decides the blank-line structure of the
markdown it freezes, so this module follows the same line-by-line state machine rather than
a "nicer" Markdown parser:

- a `---` ... `---` YAML block is a raw cell (but see the quirk in split_cells);
- ```` ```{python} ```` ... ```` ``` ```` (same indent, same number of backticks) is a code cell;
- everything in between is a markdown cell; every cell loses its leading/trailing blank lines
  and cells left empty are dropped.

A code cell keeps its `#|` option lines in its source (as Quarto does); `options` holds them
parsed as YAML.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LANGUAGE = "python"

_YAML_DELIM = re.compile(r"^---\s*$")
_CELL_START = re.compile(r"^(\s*)(```+)\s*\{" + LANGUAGE + r"( *[ ,].*)?\}\s*$")
_FENCE_START = re.compile(r"^(\s*)```")
_OPTION_LINE = re.compile(r"^#\s*\| ?")
# An inline expression: `{python} expr`, not preceded by another backtick (Quarto's pattern).
INLINE_EXPR = re.compile(r"(^|[^`])`\{" + LANGUAGE + r"\}[ \t]([^`]+)`")


@dataclass
class Cell:
    kind: str  # "raw" | "markdown" | "code"
    lines: list[str]  # the cell source, one entry per line, no newlines
    indent: str = ""  # a code cell's fence indent (Quarto's md-indent), stripped from `lines`
    option_lines: list[str] = field(default_factory=list)  # the leading `#|` lines (code only)
    options: dict = field(default_factory=dict)  # those lines parsed as YAML

    @property
    def source(self) -> str:
        return "\n".join(self.lines)

    @property
    def code_lines(self) -> list[str]:
        """The code without its option lines (what the kernel runs and the page echoes)."""
        return self.lines[len(self.option_lines):]

    @property
    def label(self) -> str | None:
        label = self.options.get("label")
        return label if isinstance(label, str) and label else None

    def inline_expressions(self) -> list[str]:
        """The `{python} expr` expressions of a markdown cell, in order, as written.

        (Quarto) results are stored under the expression as written but looked up stripped, so
        `{python} x ` (trailing space) is evaluated yet never substituted; we keep that."""
        if self.kind != "markdown":
            return []
        return [m.group(2) for line in self.lines for m in INLINE_EXPR.finditer(line)]


@dataclass
class Page:
    path: Path  # absolute path of the .qmd
    rel: str  # path relative to the site root, with forward slashes (used in messages)
    text: str  # the source, LF line endings
    front_matter: dict
    cells: list[Cell]

    @property
    def hash(self) -> str:
        return source_hash(self.text)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "code"]

    @property
    def needs_execution(self) -> bool:
        """Whether Quarto would run this page through the jupyter engine (and freeze it).

        Pages without python cells and without a `jupyter:` key go to the markdown engine,
        which executes nothing and writes no _freeze entry (see the reference index.qmd)."""
        return bool(self.code_cells) or "jupyter" in self.front_matter

    @property
    def title(self) -> str:
        title = self.front_matter.get("title")
        return str(title) if title else self.path.stem


def normalise(text: str) -> str:
    """LF line endings and no BOM: what Quarto hashes (Deno's text reader drops the BOM)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n")


def source_hash(text: str) -> str:
    """The `hash` Quarto stores in a freeze entry: md5 of the LF-normalised source."""
    return hashlib.md5(normalise(text).encode("utf-8")).hexdigest()


def read_source(path: Path) -> str:
    return normalise(path.read_bytes().decode("utf-8"))


def parse_cell_options(lines: list[str]) -> tuple[list[str], dict]:
    """Split the leading `#|` lines off a code cell and parse them as YAML."""
    option_lines, yaml_lines = [], []
    for line in lines:
        m = _OPTION_LINE.match(line)
        if not m:
            break
        option_lines.append(line)
        yaml_lines.append(line[m.end():])
    if not yaml_lines:
        return [], {}
    try:
        options = yaml.safe_load("\n".join(yaml_lines))
    except yaml.YAMLError as e:
        raise ValueError(f"invalid #| cell options {yaml_lines!r}: {e}") from e
    return option_lines, options if isinstance(options, dict) else {}


def _trim_empty(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def split_cells(text: str) -> list[Cell]:
    """Quarto's qmd -> notebook cell split (see the module docstring)."""
    cells: list[Cell] = []
    buffer: list[str] = []
    state = {"indent": ""}

    def flush(kind: str) -> None:
        lines = list(buffer)
        buffer.clear()
        if not lines:
            return
        indent = state["indent"] if kind == "code" else ""
        if indent:
            lines = [line.replace(indent, "", 1) for line in lines]
        lines = _trim_empty(lines)
        if not lines:  # Quarto drops empty cells, code cells included
            return
        cell = Cell(kind, lines, indent=indent)
        if kind == "code":
            cell.option_lines, cell.options = parse_cell_options(lines)
        cells.append(cell)

    lines = text.split("\n")
    in_yaml = in_cell = in_code = False
    ticks = 0
    for i, line in enumerate(lines):
        next_line = lines[i + 1] if i + 1 < len(lines) else None
        # (Quarto) a `---` only counts when the next line is not blank, closing ones included:
        # so the front matter usually ends up at the top of the first markdown cell, not in a
        # raw cell of its own. The markdown written is the same either way.
        if (_YAML_DELIM.match(line) and not in_cell and not in_code
                and (next_line is None or next_line.strip() != "")):
            if in_yaml:
                buffer.append(line)
                flush("raw")
                in_yaml = False
            else:
                flush("markdown")
                buffer.append(line)
                in_yaml = True
        elif not in_cell and (m := _CELL_START.match(line)):
            flush("markdown")
            in_cell = True
            state["indent"], ticks = m.group(1), len(m.group(2))
        elif in_cell and re.match("^" + re.escape(state["indent"]) + "`" * ticks + r"\s*$", line):
            in_cell = False
            flush("code")
            state["indent"] = ""
        elif not in_cell and (m := _FENCE_START.match(line)):
            # Quarto only uses this flag to stop `---` inside code from opening a YAML block
            # (and, as Quarto does, never clears it again).
            in_code = True
            buffer.append(line)
        else:
            buffer.append(line)
    flush("markdown")
    return cells


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:(.*?)\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


def split_front_matter(text: str) -> tuple[dict, str]:
    """(front matter as a dict, the text after it); ({}, text) when there is none."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    try:
        data = yaml.safe_load(m.group(1) or "")
    except yaml.YAMLError as e:
        raise ValueError(f"invalid front matter: {e}") from e
    return (data if isinstance(data, dict) else {}), text[m.end():]


def page_rel(path: Path, root: Path) -> str:
    path = path if path.is_absolute() else root / path
    return path.resolve().relative_to(root.resolve()).as_posix()


def parse_page(path: Path, root: Path) -> Page:
    """Read and split one page; `path` is relative to `root` or absolute inside it."""
    root = root.resolve()
    path = (path if path.is_absolute() else root / path).resolve()
    rel = page_rel(path, root)
    text = read_source(path)
    try:
        cells = split_cells(text)
        front, _ = split_front_matter(text)
    except ValueError as e:
        raise ValueError(f"{rel}: {e}") from e
    return Page(path=path, rel=rel, text=text, front_matter=front, cells=cells)
