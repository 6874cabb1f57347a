"""A page's prose as Jupyter Markdown: what the student notebook shows where the page has Quarto syntax.

- An inline `{python} expr` becomes the value the site's render printed there (the course's, from the page's
  freeze entry), never the expression; without a recorded value, a pointer to the section's comparison cell.
- A Quarto callout (`::: {.callout-tip title="..."}` ... `:::`) becomes a blockquote with a bold title, or, when
  collapsed (`collapse="true"`), a `<details>` element whose `<summary>` is the title, as on the site. The title
  is the `title` attribute, else the callout's first heading (as Quarto takes it), else its kind ("Tip").
  Any other `:::` div keeps its content and loses its fences.
- Pandoc attributes (`## Heading {#sec-x}`, `[text]{.smallcaps}`) are dropped: Jupyter would show them as text.
- A link to another page (`[week 1](01-fine-tuning.qmd)`) goes to that page on the site when _quarto.yml names the
  site's address (`website: site-url:`), else to that page's notebook by file name (the notebooks sit in one
  folder): a `.qmd` path means nothing to a student, and is dead on Kaggle.

A callout may hold code cells (an answer's computation): `Prose` carries the open callouts from one markdown cell
to the next, closes a `<details>` at the end of a cell and opens it again, "(continued)", in the next one.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .qmd import INLINE_EXPR

MISSING = "*[a value: see the comparison at the end of this section]*"

_DIV_OPEN = re.compile(r"^\s*(:{3,})\s*(\{(?P<attrs>[^}]*)\}|(?P<word>[\w-]+))\s*$")
_DIV_CLOSE = re.compile(r"^\s*:{3,}\s*$")
_CALLOUT = re.compile(r"(?:^|\s)\.?callout-(\w+)")
_ATTR = re.compile(r"""(\w[\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_HEADING_ATTRS = re.compile(r"\s*\{[#.][^}]*\}\s*$")
_SPAN = re.compile(r"\[([^\]]+)\]\{[#.][^}]*\}")
_HTML_INLINE = re.compile(r"^`(.*)`\{=html\}$", re.S)
# A link to a page: `](target.qmd#anchor)` in Markdown, `href="target.qmd"` in HTML. A site address is left alone.
_PAGE_LINK = re.compile(r"""(\]\(|href=["'])(?![a-z]+://)([^)\s"'#]*\.qmd)(#[^)\s"']*)?""")
_FENCE = re.compile(r"^\s*(```|~~~)")


def page_link(target: str, page_dir: str = "", site_url: str | None = None) -> str:
    """Where a notebook's link to the page `target` (as written on the page in folder `page_dir`) goes: the page on
    the site, `<site_url>/course/01-fine-tuning.html`, else its notebook, `01-fine-tuning.ipynb`. An anchor
    (`#sec-x`) is kept only on the site: Jupyter makes its own anchors from the headings' text."""
    path, _, anchor = target.partition("#")
    page = posixpath.normpath(posixpath.join(page_dir, path))
    if site_url:
        return f"{site_url.rstrip('/')}/{page[:-len('.qmd')]}.html" + (f"#{anchor}" if anchor else "")
    return f"{PurePosixPath(page).stem}.ipynb"


def plain(value: str) -> str:
    """A value as written into the prose, without its Markdown escapes (for printing next to a student's)."""
    m = _HTML_INLINE.match(value)
    return m.group(1) if m else re.sub(r"\\(.)", r"\1", value)


@dataclass
class _Div:
    kind: str            # "quote", "details" or "div"
    title: str = ""
    shown: bool = False  # has a markdown cell shown any of its content yet?


@dataclass
class Prose:
    """Turns a page's markdown cells, in order, into Jupyter Markdown (one Prose per page)."""
    values: dict = field(default_factory=dict)     # inline expression (stripped) -> the course's Markdown value
    page_dir: str = ""                              # the page's folder in the site ("course"), for its links
    site_url: str | None = None                     # the site's address (_quarto.yml `website: site-url:`)
    answers: set = field(default_factory=set)       # expressions met inside a collapsed callout (an answer)
    _open: list = field(default_factory=list)

    @property
    def at_top(self) -> bool:
        """No callout is open: a heading here starts a section (inside a callout it is the callout's title)."""
        return not self._open

    def sections(self, lines: list[str]) -> list[list[str]]:
        """A markdown cell's lines cut before each section heading (`#` or `##`), so that each part belongs to one
        section. A heading inside a callout is its title and a `#` line in a fenced block is code: neither cuts."""
        parts: list[list[str]] = [[]]
        depth, fenced = len(self._open), False
        for line in lines:
            if _FENCE.match(line):
                fenced = not fenced
            elif not fenced and _DIV_OPEN.match(line):
                depth += 1
            elif not fenced and _DIV_CLOSE.match(line) and depth:
                depth -= 1
            elif not fenced and not depth and section_heading(line) and any(x.strip() for x in parts[-1]):
                parts.append([])
            parts[-1].append(line)
        return parts

    def cell(self, lines: list[str]) -> str:
        out: list[str] = []
        for n, div in enumerate(self._open):         # callouts left open by a code cell inside them
            if div.kind == "details":
                title = f"{div.title} (continued)" if div.shown else div.title
                out += self._quoted([f"<details><summary>{title}</summary>", ""], self._open[:n])
        heads: dict[int, int] = {}                   # id of a div opened in this cell -> len(out) after its head
        i = 0
        while i < len(lines):
            line = self._values(lines[i])
            i += 1
            if m := _DIV_OPEN.match(line):
                div, i = self._opened(m, lines, i)
                out += self._quoted(self._head(div), self._open)
                self._open.append(div)
                heads[id(div)] = len(out)
            elif _DIV_CLOSE.match(line) and self._open:
                div = self._open.pop()
                out += self._quoted(["", "</details>", ""] if div.kind == "details" else [""], self._open)
            else:
                out += self._quoted([self._attributes(line)], self._open)
                if line.strip():
                    for div in self._open:
                        div.shown = True
        for n in reversed(range(len(self._open))):   # a code cell follows inside the callout: close it for now
            div = self._open[n]
            if div.kind != "details":
                continue
            if not div.shown and heads.get(id(div)) == len(out):   # opened here with nothing in it yet
                del out[-len(self._head(div)):]
            else:
                out += self._quoted(["", "</details>"], self._open[:n])
        return "\n".join(out).strip("\n")

    @staticmethod
    def _quoted(lines: list[str], enclosing: list[_Div]) -> list[str]:
        """Each line prefixed '> ' once per enclosing blockquote callout."""
        prefix = "> " * sum(d.kind == "quote" for d in enclosing)
        return [(prefix + line).rstrip() for line in lines]

    def _values(self, line: str) -> str:
        def value(m: re.Match) -> str:
            if any(div.kind == "details" for div in self._open):
                self.answers.add(m.group(2).strip())
            found = self.values.get(m.group(2).strip())
            return m.group(1) + (_HTML_INLINE.sub(r"\1", found) if found is not None else MISSING)
        return INLINE_EXPR.sub(value, line)

    def _opened(self, m: re.Match, lines: list[str], i: int) -> tuple[_Div, int]:
        attrs = m.group("attrs") if m.group("attrs") is not None else m.group("word")
        callout = _CALLOUT.search(attrs)
        if not callout:
            return _Div("div"), i
        found = {k: a or b or c for k, a, b, c in _ATTR.findall(attrs)}
        title = found.get("title", "")
        if not title:                                # Quarto: the callout's first heading is its title
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and (h := _HEADING.match(lines[j])):
                title, i = _HEADING_ATTRS.sub("", h.group(2)), j + 1
                while i < len(lines) and not lines[i].strip():
                    i += 1
        title = self._values(title) or callout.group(1).capitalize()
        collapsed = found.get("collapse", "").lower() == "true"
        return _Div("details" if collapsed else "quote", title), i

    @staticmethod
    def _head(div: _Div) -> list[str]:
        if div.kind == "details":
            return ["", f"<details><summary>{div.title}</summary>", ""]
        if div.kind == "quote":
            return ["", f"> **{div.title}**", ">"]
        return []

    def _attributes(self, line: str) -> str:
        if _HEADING.match(line):
            line = _HEADING_ATTRS.sub("", line)
        line = _PAGE_LINK.sub(lambda m: m.group(1) + page_link(m.group(2) + (m.group(3) or ""), self.page_dir,
                                                                self.site_url), line)
        return _SPAN.sub(r"\1", line)


def section_heading(line: str) -> str | None:
    """The title of a section heading line (`## The run {#sec-run}` -> 'The run'), else None."""
    m = _HEADING.match(line)
    if not m or len(m.group(1)) > 2:
        return None
    return _HEADING_ATTRS.sub("", m.group(2))
