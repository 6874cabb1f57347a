"""Shared display code for the pages: Markdown tables, the provenance panel, notebook links, plot styling.

Pages call these and only display; each week's own tables are built in its module (e.g. lab.quantize) and shown
through `table()` here, so no page copies display code from another.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.record import env, paths


# Columns that name where a row was measured: the same long CPU name in every row of a table of one machine's
# records crowds out the numbers and makes the other columns wrap. When every row agrees, it is said once above.
SAID_ONCE = ("hardware", "measured on")


def said_once(rows: list[dict], columns=SAID_ONCE) -> tuple[dict, list[dict]]:
    """The `columns` whose value is the same in every one of two or more rows, and the rows without them."""
    same = {c: rows[0][c] for c in columns
            if len(rows) > 1 and c in rows[0] and all(r.get(c, object()) == rows[0][c] for r in rows)}
    return same, [{k: v for k, v in r.items() if k not in same} for r in rows]


def markdown_table(rows, floatfmt: str = ".3g", index: bool = False, columns: list[str] | None = None,
                   once=SAID_ONCE) -> str:
    """Rows (list of dicts or a DataFrame) as a pipe table. A `|` inside a header or a cell would end the cell
    early and shift every column after it, so it is escaped; `columns` picks and orders columns. A column of
    `once` with one value in every row is said in a line above the table instead (see SAID_ONCE)."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if df.empty:
        return "*(none)*"        # an empty pipe table would render as nothing at all
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    same = said_once(df.to_dict("records"), once)[0] if not index else {}
    if same:
        df = df.drop(columns=list(same))
    escape = lambda v: v.replace("|", "\\|") if isinstance(v, str) else v    # noqa: E731
    df = df.rename(columns=escape).map(escape)
    if df.isna().to_numpy().any():
        # rows with different keys (a skipped route has no latency) leave NaN: show an empty cell, not "nan"
        df = df.astype(object).where(df.notna(), None)
    head = "".join(f"{k.capitalize()}: **{v}**. " for k, v in same.items())
    return (head.rstrip() + "\n\n" if head else "") + df.to_markdown(index=index, floatfmt=floatfmt)


def table(rows, floatfmt: str = ".3g", index: bool = False, columns: list[str] | None = None, once=SAID_ONCE):
    """Rows as a Markdown table object that Quarto renders as a real table (see markdown_table)."""
    from IPython.display import Markdown
    return Markdown(markdown_table(rows, floatfmt, index, columns, once))


def transposed(rows: list[dict], key: str) -> list[dict]:
    """One row per field and one column per row, headed by its `key` value: a table of many columns and few rows
    (one per machine, say) turned on its side so it reads in a page's width."""
    fields = [f for f in dict.fromkeys(f for row in rows for f in row) if f != key]
    return [{"": f, **{str(row.get(key)): row.get(f) for row in rows}} for f in fields]


def together(*parts):
    """Markdown parts (str or Markdown) shown as one cell's output, the empty ones left out. A note that is empty
    on a quiet run (the busy-machine warning) gets no cell of its own: alone, it left an empty output box."""
    from IPython.display import Markdown
    texts = [getattr(p, "data", p) or "" for p in parts]
    return Markdown("\n\n".join(t.strip("\n") for t in texts if t.strip()))


def code_list(names, empty: str = "nothing"):
    """Names as inline code for prose, `query`, `value`: Markdown, since an inline value that is a plain string
    is escaped (its backticks would show)."""
    from IPython.display import Markdown
    return Markdown(", ".join(f"`{n}`" for n in names) or empty)


def fmt(x: float, digits: int = 2) -> str:
    """A number for prose: fixed decimals, thousands separators."""
    return f"{x:,.{digits}f}"


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def source_label(prov: dict) -> str:
    """Which code measured it: the commit in the course repository, or the lab version a student installed."""
    git = prov.get("git") or {}
    if git.get("commit"):
        return git["commit"][:8] + (" (dirty)" if git.get("dirty") else "")
    return f"lab {prov['lab']} (installed)" if prov.get("lab") else "?"


def short_date(iso: str | None) -> str:
    """'2026-11-30T21:04:11+00:00' -> '30 Nov 2026', joined by no-break spaces: an ISO date in a narrow column
    wraps at its hyphens."""
    from datetime import date
    if not iso:
        return ""
    return date.fromisoformat(iso[:10]).strftime("%d %b %Y").lstrip("0").replace(" ", "\u00a0")


def provenance_rows(records: list[dict]) -> list[dict]:
    """One row per record: what was measured, where, with which versions, from which commit, when."""
    rows = []
    for rec in records:
        p = rec["provenance"]
        rows.append({
            "measurement": rec["name"],
            "hardware": env.device_label(p),
            "torch": (p.get("libraries") or {}).get("torch"),
            "transformers": (p.get("libraries") or {}).get("transformers"),
            "commit": source_label(p),
            "date": short_date(p.get("date")),
            "wall time (s)": rec.get("wall_s"),
        })
    return rows


def this_machine() -> dict:
    """The machine rendering the page, for the provenance panel."""
    p = env.provenance()
    return {
        "CPU": f"{p['cpu']} ({p['cpu_count']} cores, {p['memory_gb']} GB)",
        "GPU": (f"{p['gpu']['name']} ({p['gpu']['memory_gb']} GB, CUDA {p['gpu']['cuda']})" if p["gpu"] else "none"),
        "Python": p["python"],
        **{lib: v for lib, v in p["libraries"].items() if v},   # e.g. only one of onnxruntime / -gpu is installed
        "ONNX Runtime providers listed": ", ".join(p["ort_providers"] or []) or "none",
        "git commit": source_label(p),
    }


# ---------------------------------------------------------------- notebooks

def site_settings(root: Path | None = None) -> dict:
    """The `ecbs5200:` block of the site's _quarto.yml (notebook install source, repository address); {} when no
    site is being rendered (a student's notebook)."""
    import yaml
    root = root or paths.site_root()
    if root is None:
        return {}
    cfg = yaml.safe_load((root / "_quarto.yml").read_text()) or {}
    return cfg.get("ecbs5200", {})


def notebook_name(page) -> str:
    """The student notebook's file name for a page: flat, by stem (course/01-fine-tuning.qmd -> 01-fine-tuning.ipynb).
    Pages link to it through notebook_links, and lab.site.notebooks writes it: both sides use this one function."""
    return f"{Path(page).stem}.ipynb"


def notebook_links(page: str):
    """Markdown links to a page's student notebook, named by the page's stem ("01-fine-tuning"): download, and
    open in Kaggle (which imports from GitHub). The link is relative to the page's folder, the kernel's working
    directory while the site renders, so the page names no repository path. In the notebook itself there is no
    site (nothing to link to), so it shows nothing."""
    import os
    from IPython.display import Markdown
    root = paths.site_root()
    if root is None:
        return Markdown("")
    s = site_settings(root)
    name = notebook_name(page)
    rel = Path(os.path.relpath(root / "notebooks" / name, Path.cwd())).as_posix()
    kaggle = ""
    if s.get("repo-url"):
        src = f"{s['repo-url'].rstrip('/')}/blob/{s.get('branch', 'main')}/notebooks/{name}"
        kaggle = f" · [Open in Kaggle](https://kaggle.com/kernels/welcome?src={src})"
    return Markdown(f"[Download this page as a notebook]({rel}){kaggle}")


# ---------------------------------------------------------------- plots

# Quarto's html figure width (fig-width 7 in at fig-dpi 96: 672 px), which the page column holds with room to
# spare at 1280 px. A plot whose tight bounding box is wider than this (a legend beside the axes, say) is shown
# wider than the column: clipped, with a sideways scroll. Every plot is drawn within it.
FIG_WIDTH_IN = 7.0

# On a phone the column is ~339 CSS px (390 less cosmo's 1.5em gutters), and a figure shrinks to it: a 7 in figure
# to half, its 8 pt legend to ~5.6 px. A figure meant to be read there is drawn narrower (PHONE_FIG_WIDTH_IN, shown
# at ~500 px on a desktop) with text of at least PHONE_FONT_PT, which comes out at 9 px or more at 390 px.
PHONE_COLUMN_PX = 339
PHONE_FIG_WIDTH_IN = 5.2
PHONE_FONT_PT = 10


def legend_below(ax, handles=None, labels=None, ncols: int = 4, y: float = -0.18, fontsize: float = 8, **kw):
    """The legend under the axes, in `ncols` columns: inside the axes a legend covers whatever the data puts
    there (curves on a GPU record need not fall where the CPU one's did), and beside them it widens the figure
    past the column. `y` is where its top goes, in axes fractions: a shorter axes needs a larger one."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    # below the x label: axes fraction -0.18 clears tick labels and the label at the site's font sizes
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y), ncols=ncols,
                     frameon=False, fontsize=fontsize, **kw)


def step_125(v: float, up: bool) -> float:
    """The 1-2-5 step (..., 0.5, 1, 2, 5, 10, ...) at or below `v`, or at or above it when `up`."""
    import math
    e = math.floor(math.log10(v))
    steps = [m * 10.0 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return min(s for s in steps if s >= v) if up else max(s for s in steps if s <= v)


def ms_log_x(ax, lo: float, hi: float):
    """A log x axis of milliseconds from `lo` to `hi` (the data's extremes), widened to the 1-2-5 steps around
    them so both ends carry a label, labelled in plain numbers at 1-2-5 steps: matplotlib's own labels are 10^1
    and 10^2 only over a wide range, and 2x10^0, 3x10^0... (running into each other) over a narrow one."""
    from matplotlib import ticker
    ax.set_xscale("log")
    ax.set_xlim(step_125(lo, up=False), step_125(hi, up=True))
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    return ax


def text_readable_on_a_phone(fig, size: float = PHONE_FONT_PT):
    """Every text of `fig` (ticks, labels, legend) at least `size` points, and each axes' title wrapped to the
    narrower width (a machine's name ran past it): see PHONE_FIG_WIDTH_IN."""
    import textwrap
    from matplotlib.text import Text
    for t in fig.findobj(Text):
        if t.get_fontsize() < size:
            t.set_fontsize(size)
    for ax in fig.axes:
        title = ax.get_title(loc="left")
        if title:
            # as few lines as at 48 characters, of even length: no one-word last line ("batch" / "1")
            lines = len(textwrap.wrap(title, 48))
            width = next(w for w in range(-(-len(title) // lines), 49) if len(textwrap.wrap(title, w)) <= lines)
            ax.set_title(textwrap.fill(title, width), loc="left", fontsize=11)
    return fig


def style(ax, title: str = "", xlabel: str = "", ylabel: str = ""):
    """One look for every plot on the site."""
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


# ---------------------------------------------------------------- where a page's numbers come from

REAL_SETUP = "ModernBERT-base (149M parameters) on a Kaggle T4"     # the course's target (README)


def _model_of(rec: dict) -> str:
    """'minilm (sentence-transformers/all-MiniLM-L6-v2)': the model key of the record's profile, with its hub id."""
    from lab import models
    key = ((rec.get("config") or {}).get("profile") or {}).get("model") or "?"
    hub = getattr(models.REGISTRY.get(key), "hub_id", None)
    return f"{key} ({hub})" if hub else key


def numbers_from(records: list[dict], changes: str):
    """The sentence that says, where a page's numbers are, which model and hardware they come from (read from
    each record's provenance, one clause per hardware), and what `changes` on the course's real setup."""
    from IPython.display import Markdown
    seen = {}
    for rec in records:
        p = rec["provenance"]
        seen.setdefault((_model_of(rec), env.device_label(p)),
                        f'torch {(p.get("libraries") or {}).get("torch")}, {(p.get("date") or "")[:10]}')
    if not seen:
        return Markdown(f"**Where these numbers come from.** Nothing is measured yet on this machine. On the "
                        f"course's real setup, {REAL_SETUP}, {changes}")
    where = "; ".join(f"**{model}** on **{hw}** ({when})" for (model, hw), when in seen.items())
    return Markdown(f"**Where these numbers come from.** The numbers on this page were measured with {where}. "
                    f"On the course's real setup, {REAL_SETUP}, {changes}")


def remake_time(names: list[str], profile_name: str) -> str:
    """How long the records `names` (an earlier week's runs) took to make on each machine that measured them, from
    their wall times: what a fresh session spends remaking them. Markdown, for an opening's inline value."""
    from lab.record import store
    per_machine: dict[str, float] = {}
    for name in names:
        for rec in store.load_all(name, profile_name):
            label = env.device_label(rec["provenance"])
            per_machine[label] = per_machine.get(label, 0.0) + (rec.get("wall_s") or 0.0)
    if not per_machine:
        return "not measured yet on this profile"
    return "; ".join(f"about {max(1, round(s / 60))} min on {hw}" for hw, s in per_machine.items())
