"""A page's prose as Jupyter Markdown: what the student notebook shows where the page has Quarto syntax.

- An inline `{python} expr` becomes the value the site's render printed there (the course's, from the page's
  freeze entry), never the expression; without a recorded value, a pointer to the values cell that follows.
- A Quarto callout (`::: {.callout-tip title="..."}` ... `:::`) becomes a blockquote with a bold title, or, when
  collapsed (`collapse="true"`), a `<details>` element whose `<summary>` is the title, as on the site. The title
  is the `title` attribute, else the callout's first heading (as Quarto takes it), else its kind ("Tip").
  Any other `:::` div keeps its content and loses its fences.
- Pandoc attributes (`## Heading {#sec-x}`, `[text]{.smallcaps}`) are dropped: Jupyter would show them as text.

A callout may hold code cells (an answer's computation): `Prose` carries the open callouts from one markdown cell
to the next, closes a `<details>` at the end of a cell and opens it again, "(continued)", in the next one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .qmd import INLINE_EXPR

MISSING = "*[a value: see the cell below]*"

_DIV_OPEN = re.compile(r"^\s*(:{3,})\s*(\{(?P<attrs>[^}]*)\}|(?P<word>[\w-]+))\s*$")
_DIV_CLOSE = re.compile(r"^\s*:{3,}\s*$")
_CALLOUT = re.compile(r"(?:^|\s)\.?callout-(\w+)")
_ATTR = re.compile(r"""(\w[\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_HEADING_ATTRS = re.compile(r"\s*\{[#.][^}]*\}\s*$")
_SPAN = re.compile(r"\[([^\]]+)\]\{[#.][^}]*\}")
_HTML_INLINE = re.compile(r"^`(.*)`\{=html\}$", re.S)


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
    _open: list = field(default_factory=list)

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

    @staticmethod
    def _attributes(line: str) -> str:
        if _HEADING.match(line):
            line = _HEADING_ATTRS.sub("", line)
        return _SPAN.sub(r"\1", line)
