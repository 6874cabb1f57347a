"""Look at the frozen site in a browser where Quarto is not installed: each frozen page becomes a standalone HTML
file (pandoc), which headless Chromium measures and photographs at a desktop and a phone width.

    python -m lab.site.preview --out /tmp/preview                        # every frozen page
    python -m lab.site.preview --out /tmp/preview course/06-verification  # one page

writes, per page and width, `<page>-1280.png` and `<page>-390.png`, and prints each page's width in CSS pixels
at each window width: a page wider than the window scrolls sideways. Exit status 1 if one does.

Needs `pandoc` (`pip install pypandoc-binary` brings one) and `chromium` (`apt-get install chromium`).
The page is an approximation of Quarto's (cosmo's column and fonts, Bootstrap's inline-block figure, the grid
track a long word can widen) with the site's own `styles.css` on top: it shows what the frozen markdown does
to the layout at two widths, not Quarto's exact look.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTHS = (1280, 390)         # a laptop, and a phone (iPhone 12-15 CSS width)

# Quarto's cosmo page, reduced to what decides widths. From 992 px: docked sidebar 250 px, body column at most
# 850 px, table of contents 250 px; below: one column with 1.5em gutters. Grid tracks sized `fr` grow to their
# content's min-content width, as Quarto's do: an unbreakable inline code pushes the column past a phone's width.
QUARTO_LIKE_CSS = """
html { font-size: 17px; }
body { margin: 0; font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       line-height: 1.5; color: #373a3c; display: grid;
       grid-template-columns: [screen-start] 1.5em [body-start] 5fr [body-end] 1.5em [screen-end]; }
body > main { grid-column: body; }
@media (min-width: 992px) {
  body { grid-template-columns: [screen-start] 250px [body-start] minmax(500px, 850px) [body-end] 250px [screen-end]; }
}
code { font-size: .875em; color: #9753b8; background: #f8f9fa; padding: .2em; word-wrap: break-word; }
pre { background: #f8f9fa; padding: .5em; overflow-x: auto; }
pre code { color: inherit; padding: 0; }
figure { display: inline-block; margin: 0 0 1rem; }        /* Bootstrap's .figure */
figure img { max-width: 100%; height: auto; }              /* Bootstrap's .img-fluid, which Quarto adds */
figcaption { font-size: .875em; color: #6c757d; }
table { border-collapse: collapse; margin-bottom: 1rem; font-size: .875em; }
th, td { border-bottom: 1px solid #dee2e6; padding: .25rem .5rem; vertical-align: top; }
blockquote { border-left: .25rem solid #e9ecef; margin-left: 0; padding-left: .75rem; color: #6c757d; }
"""

# Run in the page once it has laid out: its size, into its own DOM and to the frame around it (see framed()).
MEASURE_JS = ("<script>window.addEventListener('load', () => { const size = document.documentElement.scrollWidth "
              "+ 'x' + document.documentElement.scrollHeight; document.body.setAttribute('data-size', size); "
              "if (window.parent !== window) window.parent.postMessage(size, '*'); });</script>")

# Headless Chromium will not make a window narrower than 500 px, so a page is laid out inside an iframe of the
# width asked for, in a wider window; the screenshot is then cut to the iframe.
MIN_WINDOW = 600


def tool(*names: str) -> str:
    """The first of `names` on PATH; pandoc also from pypandoc-binary. Says how to install it when missing."""
    for name in names:
        if shutil.which(name):
            return shutil.which(name)
    if "pandoc" in names:
        try:
            import pypandoc
            return pypandoc.get_pandoc_path()
        except (ImportError, OSError):
            pass
    hint = "pip install pypandoc-binary" if "pandoc" in names else "apt-get install chromium"
    raise SystemExit(f"preview needs {names[0]}, which is not installed: {hint}")


def frozen_pages(root: Path) -> list[str]:
    """Pages with a frozen entry, as paths without `.qmd` (`course/01-fine-tuning`)."""
    freeze = root / "_freeze"
    return sorted(p.parent.parent.relative_to(freeze).as_posix() for p in freeze.glob("**/execute-results/html.json"))


def to_html(root: Path, page: str, out: Path) -> Path:
    """The page's frozen markdown as standalone HTML in `out`, its figures beside it where the markdown says."""
    entry = root / "_freeze" / page
    markdown = json.loads((entry / "execute-results" / "html.json").read_text())["result"]["markdown"]
    # Pandoc 2.x (Debian's 2.17) takes a fenced div whose id starts with a digit (a cell id such as #27c75355) for
    # text, and prints its ':::' fences; Quarto's pandoc 3 does not. A letter in front reads alike in both.
    markdown = re.sub(r"(?m)^(:::+ \{#)(\d)", r"\1cell-\2", markdown)
    name = Path(page).name
    if (entry / "figure-html").is_dir():     # the markdown names them `<name>_files/figure-html/...`
        shutil.copytree(entry / "figure-html", out / f"{name}_files" / "figure-html", dirs_exist_ok=True)
    (out / "quarto-like.css").write_text(QUARTO_LIKE_CSS)
    css = ["quarto-like.css"]
    if (root / "styles.css").is_file():
        shutil.copy(root / "styles.css", out / "styles.css")
        css.append("styles.css")
    (out / "measure.html").write_text(MEASURE_JS)
    html = out / f"{name}.html"
    subprocess.run([tool("pandoc"), "-f", "markdown", "-t", "html5", "--standalone", "--mathml",
                    *[f"--css={c}" for c in css], "--include-after-body", str(out / "measure.html"),
                    "-o", str(html)], input=markdown, text=True, check=True, cwd=out)
    # Quarto's page column is one element, <main class="content" id="quarto-document-content">
    text = html.read_text()
    text = text.replace("<body>", '<body>\n<main class="content" id="quarto-document-content">', 1)
    html.write_text(text.replace("</body>", "</main>\n</body>", 1))
    return html


def framed(html: Path, width: int, height: int) -> Path:
    """A page holding `html` in an iframe `width` x `height` CSS pixels, which notes the size the page reports."""
    frame = html.with_name(f"{html.stem}-frame-{width}.html")
    frame.write_text(f'<html><body style="margin:0"><iframe src="{html.name}" style="border:0;width:{width}px;'
                     f'height:{height}px;display:block"></iframe><script>window.addEventListener("message", '
                     f'e => document.body.setAttribute("data-size", e.data));</script></body></html>')
    return frame


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("chromium", "chromium-browser", "google-chrome"), "--headless", "--no-sandbox",
                           "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=180)


def measure(html: Path, width: int) -> tuple[int, int]:
    """(width, height) of the laid-out page in CSS pixels, in a window `width` wide."""
    frame = framed(html, width, 900)
    dom = chromium(f"--window-size={max(width, MIN_WINDOW)},900", "--dump-dom", frame.as_uri()).stdout
    found = re.search(r'data-size="(\d+)x(\d+)"', dom)
    if not found:
        raise SystemExit(f"chromium did not lay out {html} (no size in its DOM); run it by hand to see why")
    return int(found[1]), int(found[2])


def screenshot(html: Path, png: Path, width: int, height: int) -> None:
    """The whole page, `height` tall (capped: a phone-width page can be very long), in a window `width` wide."""
    from PIL import Image
    height = min(height, 16000)
    chromium(f"--window-size={max(width, MIN_WINDOW)},{height}", f"--screenshot={png}",
             framed(html, width, height).as_uri()).check_returncode()
    with Image.open(png) as shot:
        cut = shot.crop((0, 0, width, height))
    cut.save(png)


def preview(root: Path, pages: list[str], out: Path) -> list[str]:
    """Screenshots of `pages` at every width in WIDTHS; returns one line per page that scrolls sideways."""
    wide = []
    for page in pages:
        html = to_html(root, page, out)
        for width in WIDTHS:
            w, h = measure(html, width)
            png = out / f"{Path(page).name}-{width}.png"
            screenshot(html, png, width, h)
            note = f"  SCROLLS SIDEWAYS ({w} px wide)" if w > width else ""
            print(f"{page} at {width} px: {png}{note}")
            if note:
                wide.append(f"{page} is {w} px wide in a {width} px window")
    return wide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.site.preview", description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", help="pages without .qmd (default: every frozen page)")
    ap.add_argument("--root", type=Path, default=Path("."), help="the site (holds _freeze/ and styles.css)")
    ap.add_argument("--out", type=Path, default=None, help="where the HTML and PNGs go (default: a temp folder)")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="lab-preview-"))
    out.mkdir(parents=True, exist_ok=True)
    wide = preview(args.root.resolve(), args.pages or frozen_pages(args.root), out.resolve())
    for line in wide:
        print(line, file=sys.stderr)
    return 1 if wide else 0


if __name__ == "__main__":
    sys.exit(main())
