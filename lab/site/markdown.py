"""Turn an executed page into the markdown Quarto's jupyter engine freezes (`result.markdown`).

This follows quarto-cli's jupyterToMarkdown / mdFromCodeCell (src/core/jupyter/jupyter.ts,
labels.ts, tags.ts, display-data.ts, jupyter-inline.ts) for html output, so that a page frozen
here is what `quarto render` would have frozen. Each comment marked "(Quarto)" documents a
behaviour that looks odd but is what Quarto does, and is kept for byte-compatibility.

Result: the markdown, the figure files (name -> bytes) for figure-html/, and whether a
require.js/jQuery header include is needed.
"""
from __future__ import annotations

import base64
import json
import re
import struct
import unicodedata
from dataclasses import dataclass, field

from .execute import FIG_DPI, FIG_FORMAT, ExecutedCell
from .qmd import INLINE_EXPR, LANGUAGE, Cell

# Options Quarto handles itself and so does not forward as attributes of the cell div.
_INTERNAL_KEYS = {
    "eval", "echo", "warning", "error", "output", "include", "label", "classes", "panel",
    "column", "fig-cap", "fig-subcap", "fig-scap", "fig-cap-location", "tbl-cap-location",
    "cap-location", "fig-column", "tbl-column", "fig-link", "fig-align", "fig-alt", "fig-env",
    "fig-pos", "lst-label", "lst-cap", "out-width", "out-height", "md-indent", "code-fold",
    "code-line-numbers", "code-summary", "code-overflow", "html-table-processing",
    # standard and third-party notebook metadata keys
    "collapsed", "autoscroll", "deletable", "format", "name", "id", "colab", "colab_type",
    "outputid", "lines_to_next_cell", "language",
}
# Other cell options Quarto knows (they stay options rather than becoming cell metadata).
_OPTION_KEYS = {"layout-align", "layout-valign", "layout-ncol", "layout-nrow", "layout", "tbl-cap",
                "tbl-colwidths"}
_FIG_OPTIONS = ["fig-align", "fig-env", "fig-alt", "fig-pos", "fig-scap"]

# Display priority for html output (display-data.ts): html formats first, then markdown,
# images, and text/plain last.
_MIME_PRIORITY = [
    "application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json",
    "application/javascript", "text/html", "text/markdown", "image/svg+xml", "image/png",
    "image/jpeg", "text/plain",
]
_IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg", "application/pdf": "pdf"}

# Deno's stripColor pattern (Quarto strips ANSI colours from stream output).
_ANSI = re.compile(
    r"[\u001B\u009B][\[\]()#;?]*(?:(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*"
    r"|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)"
    r"|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))"
)


@dataclass
class PageMarkdown:
    markdown: str
    figures: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    needs_js: bool = False  # a text/html or javascript output: Quarto adds require.js/jQuery


def js_str(value) -> str:
    """String(value) as JavaScript writes it (true, 3, 0.5, null)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _lines(text) -> list[str]:
    """Text as the list of lines nbformat stores it as (keeping the newlines)."""
    if isinstance(text, list):
        return [str(t) for t in text]
    return str(text).splitlines(True)


def _ticks(lines: list[str], minimum: int = 3) -> str:
    """A fence one backtick longer than any run of backticks that starts a line.
    (Quarto) the leading whitespace is counted too."""
    longest = max([len(m.group(0)) for line in lines if (m := re.match(r"^\s*`+", line))] + [0])
    return "`" * max(minimum, longest + 1)


def _enclosed(begin: str, text: list[str], end: str) -> str:
    body = "".join(text)
    return begin + "\n" + body + ("" if body.endswith("\n") else "\n") + end + "\n"


def _code_output(lines: list[str]) -> str:
    ticks = _ticks(lines)
    return _enclosed(ticks, lines, ticks)


def _format_output(fmt: str, lines: list[str]) -> str:
    ticks = _ticks(lines)
    return _enclosed(ticks + "{=" + fmt + "}", lines, ticks)


def _stream_output(name: str, lines: list[str]) -> str:
    if name == "stderr" and lines:  # (Quarto) drop the `<ipython-input-..>:N: ` warning prefix
        lines = [re.sub(r"<ipython-input.*?>:\d+:\s+", "", lines[0], count=1)] + lines[1:]
    return _code_output([_ANSI.sub("", line) for line in lines])


def mime_type(data: dict) -> str | None:
    for mime in _MIME_PRIORITY:
        if mime in data:
            return mime
    return None


def _is_display(output) -> bool:
    return output.get("output_type") in ("display_data", "execute_result")


def _output_mime(output) -> str | None:
    return mime_type(output.get("data", {})) if _is_display(output) else None


def _is_image(output) -> bool:
    return _output_mime(output) in _IMAGE_MIMES


def auto_identifier(text: str) -> str:
    """Pandoc's auto identifier (ascii variant) for figure file names."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s.-]", "", text.lower())
    text = re.sub(r"\s+", "-", text.strip())
    return re.sub(r"^[^a-z]+", "", text)


# ---- inline expressions -------------------------------------------------------------------

def _escaped_markdown(s: str) -> str:
    """(Quarto) a quoted repr (a str) loses its quotes and is markdown-escaped; other reprs
    (numbers...) are used as they are. `+-.` is a range in Quarto's class, hence the comma."""
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1].replace("\\", "\\\\")
        return re.sub(r"([\\`*_{}\[\]()>#+,\-.!])", r"\\\1", s)
    return s


def inline_value(result: dict) -> str | None:
    data = result.get("data", {})
    mime = mime_type(data)
    if mime is None:
        return None
    value = data[mime]
    value = "".join(map(str, value)) if isinstance(value, list) else str(value)
    if mime == "text/html":
        return f"`{value}`{{=html}}"
    if mime == "text/markdown":
        return value
    return _escaped_markdown(value)


def resolve_inline(lines: list[str], results: dict) -> list[str]:
    def sub(m: re.Match) -> str:
        result = results.get(m.group(2).strip())
        value = inline_value(result) if result else None
        return m.group(1) + value if value else m.group(0)  # (Quarto) empty values stay as code

    return [INLINE_EXPR.sub(sub, line) for line in lines]


# ---- cells ----------------------------------------------------------------------------------

def _content_cell(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _fixup_streams(outputs: list) -> list:
    """(Quarto fixupStreams) all stdout text joins the first stdout output, same for stderr."""
    merged, seen = [], {}
    for output in outputs:
        if output.get("output_type") == "stream":
            name = output.get("name")
            if name in seen:
                seen[name]["text"] += _lines(output.get("text", ""))
                continue
            output = {"output_type": "stream", "name": name, "text": _lines(output.get("text", ""))}
            seen[name] = output
        merged.append(output)
    return merged


def _discardable(output, have_image: bool) -> bool:
    """(Quarto) drop a text-only execute_result such as `[<matplotlib.lines.Line2D ...>]`."""
    if output.get("output_type") != "execute_result":
        return False
    data = output.get("data", {})
    if len(data) != 1 or "text/plain" not in data:
        return False
    text = _lines(data["text/plain"])
    if not text:
        return False
    if have_image and len(text) == 1:
        return bool(re.match(r"^([<(\[]).*?([>)\]])$", text[0].strip()))
    return any(text[0].startswith(p) for p in ("[<matplotlib", "<matplotlib", "<seaborn.", "<ggplot:"))


def _latex_as_markdown(output):
    """(Quarto) a math-looking text/latex output without markdown is shown as markdown."""
    data = output.get("data", {})
    if "text/latex" in data and "text/markdown" not in data:
        latex = _lines(data["text/latex"])
        if latex and ((latex[0].startswith("$") and latex[-1].endswith("$"))
                      or (latex[0].startswith("\\begin{") and "\\end{" in latex[-1])):
            output = dict(output, data=dict(data, **{"text/markdown": data["text/latex"]}))
    return output


def _png_size(png: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, dpi_x, dpi_y) of a PNG, dpi from its pHYs chunk (0 when absent)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", png[16:24])
    dpi_x = dpi_y = 0
    pos = 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"pHYs" and length >= 9:
            ppu_x, ppu_y, unit = struct.unpack(">IIB", png[pos + 8:pos + 17])
            if unit == 1:  # pixels per metre
                dpi_x, dpi_y = round(ppu_x * 0.0254), round(ppu_y * 0.0254)
            break
        if kind == b"IDAT":
            break
        pos += 12 + length
    return width, height, dpi_x, dpi_y


@dataclass
class _Context:
    stem: str
    execute: dict  # execute options (echo/output/warning/include/...), page over project
    figures: dict


def _include(cell: Cell, ctx: _Context, key: str) -> bool:
    value = cell.options.get(key, ctx.execute.get(key, True))
    return bool(value)


def _include_warnings(cell: Cell, ctx: _Context) -> bool:
    if ctx.execute.get("output") is False and cell.options.get("output") is not False:
        return bool(cell.options.get("warning", False))
    return _include(cell, ctx, "warning")


def _cell_label(cell: Cell) -> str:
    label = cell.options.get("label")
    if not label:
        return ""
    label = str(label)
    return label if label.startswith("#") else "#" + label


def _has_table_label(cell: Cell) -> bool:
    return isinstance(cell.options.get("label"), str) and cell.options["label"].startswith("tbl-")


def _label_cell_container(cell: Cell, outputs: list, ctx: _Context) -> bool:
    if not _include(cell, ctx, "output"):
        return True
    displays = [o for o in outputs if _is_display(o)]
    if not displays:
        return True
    if len(displays) > 1 and not isinstance(cell.options.get("fig-cap"), list):
        return True
    return _has_table_label(cell)


def _label_output_container(output, cell: Cell) -> bool:
    if not _is_display(output) or _has_table_label(cell):
        return False
    return not _is_image(output)


def _captions(cell: Cell, outputs: list) -> tuple[str | None, list]:
    cap, subcap = cell.options.get("fig-cap"), cell.options.get("fig-subcap")
    if isinstance(cap, list):
        return None, [str(c) for c in cap] if any(_is_display(o) for o in outputs) else []
    if cap:
        if subcap is not None:
            if subcap is True:
                subcap = [""]
            return str(cap), [str(s) for s in subcap] if isinstance(subcap, list) else [str(subcap)]
        return None, [str(cap)]
    return None, []


def _broadcast(cell: Cell, name: str, index: int):
    value = cell.options.get(name)
    if not value:
        return None
    return value[index] if isinstance(value, list) and index < len(value) else (
        None if isinstance(value, list) else value)


def _image(label: str | None, caption: str | None, filename: str, mime: str, output,
           fig: dict, ctx: _Context) -> str:
    data = output["data"][mime]
    text = "".join(data) if isinstance(data, list) else str(data)
    file = f"{filename}.{_IMAGE_MIMES[mime]}"
    # (Quarto) width/height only come from a retina PNG (pixels / 2); metadata sizes are ignored.
    width = height = 0
    if mime == "image/svg+xml":
        content = text.encode("utf-8")
    else:
        content = base64.b64decode(text)
        size = _png_size(content) if mime == "image/png" else None
        if FIG_FORMAT == "retina" and size and size[2] == FIG_DPI * 2 and size[3] == FIG_DPI * 2:
            width, height = (size[0] + 1) // 2, (size[1] + 1) // 2  # Math.round(x / 2)
    ctx.figures[file] = content
    image = f"![{caption or ''}]({ctx.stem}_files/figure-html/{file})"
    # (Quarto) the attribute braces are always written, even when empty.
    attrs = ""
    if label:
        attrs += f"{label} "
    if width:
        attrs += f"width={width} "
    if height:
        attrs += f"height={height} "
    for name in _FIG_OPTIONS:
        if fig.get(name):
            attrs += f"{name}='{js_str(fig[name]).replace(chr(39), chr(92) + chr(39))}' "
    image += "{" + attrs.rstrip() + "}"
    if fig.get("fig-link"):
        image = f"[{image}]({fig['fig-link']})"
    return image + "\n"


def _display(label, caption, filename, output, fig, ctx: _Context) -> str:
    data = output["data"]
    mime = mime_type(data)
    if mime in _IMAGE_MIMES:
        return _image(label, caption, filename, mime, output, fig, ctx)
    if mime == "text/markdown":
        return "".join(_lines(data[mime])) + "\n"
    if mime == "text/latex":
        return _format_output("tex", _lines(data[mime]))
    if mime == "text/html":
        return _format_output("html", _lines(data[mime]))
    if mime in ("application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json"):
        payload = dict(data[mime], quarto_mimetype=mime)
        return _format_output("html", [f'<script type="{mime}">\n', json.dumps(payload, separators=(",", ":")), "\n</script>"])
    if mime == "application/javascript":
        return _format_output("html", [f'<script type="{mime}">\n', *_lines(data[mime]), "\n</script>"])
    if mime == "text/plain":
        lines = _lines(data[mime])
        if len(lines) == 1 and lines[0].startswith("'<table") and lines[0].endswith("</table>'"):
            return lines[0][1:-1] + "\n"  # (Quarto) pandas' quoted html table
        # Quarto turns ANSI colours in text/plain into html spans; we only strip them.
        return _code_output([_ANSI.sub("", line) for line in lines])
    return _stream_output("stderr", ["Unable to display output for mime type(s): " + ", ".join(data)])


def _json(value) -> str:
    """JSON.stringify(value): compact, integral floats without ".0"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _forwardable(options: dict) -> list[tuple[str, object]]:
    """Options Quarto forwards as `key='value'` attributes of the cell div, in Quarto's order:
    its qmd reader moves options it does not know to the cell metadata, and the metadata
    keys come before the known option keys (tbl-cap, layout-*, tbl-colwidths)."""
    known = _INTERNAL_KEYS | _OPTION_KEYS
    keys = [k for k in options if k not in known] + [k for k in options if k in known]
    return [(k, options[k]) for k in keys if k.lower() not in _INTERNAL_KEYS]


def _classes(cell: Cell) -> list[str]:
    o = cell.options
    classes = o.get("classes") or []
    classes = list(classes) if isinstance(classes, list) else [classes]
    for key, prefix in (("panel", "panel-"), ("column", "column-"), ("fig-column", "fig-column-"),
                        ("tbl-column", "tbl-column-")):
        if isinstance(o.get(key), str):
            classes.append(prefix + o[key])
    if isinstance(o.get("cap-location"), str):
        classes.append(f"caption-{js_str(o.get('fig-cap-location'))}")  # (Quarto) sic
    if isinstance(o.get("fig-cap-location"), str):
        classes.append(f"fig-cap-location-{o['fig-cap-location']}")
    if isinstance(o.get("tbl-cap-location"), str):
        classes.append(f"tbl-cap-location-{o['tbl-cap-location']}")
    return [c if str(c).startswith(".") else "." + str(c) for c in map(js_str, classes)]


def _code_block(cell: Cell, ctx: _Context) -> str:
    o = cell.options
    fenced = o.get("echo", ctx.execute.get("echo")) == "fenced"
    ticks = "`" * max(len(_ticks(cell.lines)), 4 if fenced else 3)
    head = ticks + " {"
    if isinstance(o.get("lst-label"), str):
        head += (o["lst-label"] if o["lst-label"].startswith("#") else "#" + o["lst-label"]) + " "
    if not fenced:
        head += "." + LANGUAGE
    head += " .cell-code"
    if o.get("code-overflow") in ("wrap", "scroll"):
        head += f" .code-overflow-{o['code-overflow']}"
    if isinstance(o.get("lst-cap"), str):
        head += f' lst-cap="{o["lst-cap"]}"'
    for key in ("code-fold", "code-summary", "code-line-numbers"):
        if key in o:
            head += f' {key}="{js_str(o[key])}"'
    head += "}\n"
    source = list(cell.code_lines)
    if fenced:
        options = [line for line in cell.option_lines if not re.search(r"echo:\s+fenced", line)]
        while source and not source[-1].strip():
            source.pop()
        if not options:
            while source and not source[0].strip():
                source.pop(0)
        body = "```{{" + LANGUAGE + "}}\n" + "".join(line + "\n" for line in options) + "\n".join(source) + "\n```\n"
    else:
        if cell.option_lines:
            while source and not source[0].strip():
                source.pop(0)
        body = "\n".join(source)
    return head + body + "\n" + ticks + "\n"


def code_cell_markdown(done: ExecutedCell, cell_id: str, cell_index: int, ctx: _Context) -> str:
    """mdFromCodeCell: the cell div with echoed code and one div per output."""
    cell, o = done.cell, done.cell.options
    if not _include(cell, ctx, "include"):
        return ""
    raw_outputs = _fixup_streams(done.outputs)
    have_image = any(_is_image(x) for x in raw_outputs)
    outputs = [
        _latex_as_markdown(x) if _is_display(x) else x
        for x in raw_outputs
        if not (x.get("output_type") == "stream" and x.get("name") == "stderr" and not _include_warnings(cell, ctx))
        and not _discardable(x, have_image)
    ]
    if not cell.code_lines and not outputs:
        return ""
    asis = o.get("output") == "asis" or (ctx.execute.get("output") == "asis" and "output" not in o)

    label = _cell_label(cell)
    label_container = _label_cell_container(cell, outputs, ctx)
    div = "::: {"
    if label and label_container:
        div += f"{label} "
    else:  # (Quarto) a labelled cell's notebook id is "cell-<label>"
        div += "#{} ".format(f"cell-{o['label']}" if isinstance(o.get("label"), str) else cell_id)
    cell_caption, output_captions = _captions(cell, raw_outputs)
    div += ".cell "
    classes = _classes(cell)
    if classes:
        div += " ".join(classes) + " "
    forwarded = False
    for key, value in _forwardable(o):
        value = value if isinstance(value, str) else _json(value)
        div += "{}='{}' ".format(key, value.replace("'", "\\'"))
        forwarded = True
    need_cell = bool(label and label_container) or bool(classes) or forwarded or (
        cell_caption is not None or bool(output_captions))
    if done.execution_count is not None:
        div += f"execution_count={done.execution_count} "
    div = re.sub(r" $", "", div) + "}\n"

    md: list[str] = []
    if _include(cell, ctx, "echo"):
        md.append(_code_block(cell, ctx))

    if _include(cell, ctx, "output"):
        label_name = label[1:].replace(":", "-") if label else f"cell-{cell_index + 1}"
        output_name = auto_identifier(label_name) + "-output"
        suffix = 1
        for index, output in enumerate(outputs):
            output_label = label
            if label and label_container and _is_display(output):
                output_label, suffix = f"{label}-{suffix}", suffix + 1
            if output.get("metadata", {}).get("quarto_display") is False:
                continue
            kind = output.get("output_type")
            if not asis:
                head = "\n::: {"
                if output_label and _label_output_container(output, cell):
                    head += output_label + " "
                head += ".cell-output "
                head += f".cell-output-{output.get('name')}" if kind == "stream" else (
                    ".cell-output-display" if _is_display(output) else f".cell-output-{kind}")
                if _output_mime(output) == "text/markdown":
                    head += " .cell-output-markdown"
                if isinstance(output.get("execution_count"), int):
                    head += f" execution_count={output['execution_count']}"
                if o.get("html-table-processing") == "none":
                    head += " html-table-processing=none"
                md.append(head + "}\n")
            fig = {name: _broadcast(cell, name, index) for name in _FIG_OPTIONS + ["fig-link"]}
            if kind == "stream":
                text = _lines(output.get("text", ""))
                md.append("".join(text) if asis and output.get("name") == "stdout"
                          else _stream_output(output.get("name"), text))
            elif kind == "error":
                md.append(_code_output([f"{output.get('ename')}: {_ANSI.sub('', str(output.get('evalue')))}"]))
            elif _is_display(output) and output.get("data"):
                caption = output_captions.pop(0) if output_captions else None
                md.append(_display(output_label or None, caption, f"{output_name}-{index + 1}", output, fig, ctx))
                if caption and not _is_image(output):
                    md.append(f"\n{caption}\n")
            if not asis:
                md.append(":::\n")

    if md and (need_cell or not asis):
        md.insert(0, div)
        if cell_caption:
            md.append("\n" + cell_caption + "\n")
        md.append(":::\n")
    md.append("\n")  # lines_to_next_cell
    text = "".join(md)
    if cell.indent:  # (Quarto) md-indent: the trailing "\n" moves in front of the indented text
        text = "\n" + "\n".join(cell.indent + line for line in text.split("\n"))
    return text


def page_markdown(cells: list[ExecutedCell], cell_ids: list[str], stem: str, execute: dict) -> PageMarkdown:
    """jupyterToMarkdown: every cell's markdown followed by a newline, joined."""
    ctx = _Context(stem=stem, execute=execute, figures={})
    parts: list[str] = []
    code_index = 0
    needs_js = False
    for done, cell_id in zip(cells, cell_ids):
        cell = done.cell
        if cell.kind == "code":
            code_index += 1
            parts.append(code_cell_markdown(done, cell_id, code_index, ctx))
            needs_js = needs_js or any(
                _is_display(x) and ({"text/html", "application/javascript"} & set(x.get("data", {})))
                for x in done.outputs
            )
        elif cell.kind == "markdown":
            parts.append(_content_cell(resolve_inline(cell.lines, done.user_expressions)))
        else:
            parts.append(_content_cell(cell.lines))
        parts.append("\n")
    return PageMarkdown(markdown="".join(parts), figures=ctx.figures, needs_js=needs_js)
