"""The page of what the class measured (course/class.qmd), built only from the class record (lab.record.class_record).

Every string in the record came from a student's machine, so none reaches the page as markup: `esc` writes each one
as literal text (HTML's special characters as entities, every ASCII punctuation mark backslash-escaped, so no `<`,
`[`, `|`, `$` or `@` of an alias or a GPU name can open a tag, a link, a table cell, maths or a citation), and the
figures draw labels with matplotlib's mathtext off. Numbers are the record's, formatted here.
"""
from __future__ import annotations

import re
from pathlib import Path

from lab.record import class_record, env, paths

LIBRARIES = ("torch", "transformers", "peft", "onnxruntime", "onnxruntime-gpu")
STACK = ("torch", "transformers", "peft")        # the stack a row is labelled with
WEEK_TITLES = {"week1": "Week 1: fine-tuning on a budget", "week2": "Week 2: LoRA",
               "week3": "Week 3: error analysis", "week4": "Week 4: quantization and deployment",
               "week5": "Week 5: distillation", "week6": "Week 6: verification"}


ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def esc(value) -> str:
    """Any value as literal Markdown text on one line, in one pass: an entity for each of & < > " ', a backslash
    before every other ASCII punctuation mark, control characters as a space."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))
    return re.sub(r"[!-/:-@\[-`{-~]", lambda m: ENTITIES.get(m.group(), "\\" + m.group()), text)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table of cells already written as Markdown (each cell from esc or a number)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ---------------------------------------------------------------- the record's submissions

def default_path() -> Path | None:
    root = paths.site_root()
    return root / "course" / "class" / class_record.CLASS_FILE if root else None


def load(path: Path | None = None) -> dict | None:
    """The site's class record (course/class/class-record.json), or None when none was gathered."""
    path = path or default_path()
    return class_record.load(path) if path else None


def submissions(record: dict | None, week: str | None = None) -> list[dict]:
    subs = (record or {}).get("submissions") or []
    return [s for s in subs if week is None or s["week"] == week]


def name(sub: dict) -> str:
    """Who submitted, as plain text: the alias, and 'the course' for the course's own records."""
    return "the course" if sub["source"] == "course" else sub["alias"]


def machine_label(sub: dict) -> str:
    """The machine, as plain text: 'CPU: AMD EPYC (2 cores)' or 'GPU: Tesla T4' (lab.record.env.device_label)."""
    m = sub["machine"]
    return env.device_label({"device": m["device"], "gpu": {"name": m["gpu"]} if m.get("gpu") else None,
                             "cpu": m["cpu"], "cpu_count": m.get("cpu_count")})


def who(sub: dict) -> str:
    """The row's label, escaped for the page."""
    return esc(name(sub))


def hardware(sub: dict) -> str:
    return esc(machine_label(sub))


def stack(sub: dict, names=STACK) -> str:
    libs = sub["machine"].get("libraries") or {}
    return esc(", ".join(f"{n} {libs[n]}" for n in names if libs.get(n)) + f", Python {sub['machine']['python']}")


def yes_no(value) -> str:
    return {True: "pass", False: "**fail**", None: "not measured"}[value]


def minutes(seconds) -> str:
    return "not measured" if seconds is None else f"{seconds / 60:.1f}"


def pct(x) -> str:
    return "not measured" if x is None else f"{100 * x:.1f}%"


def points(x) -> str:
    return "not measured" if x is None else f"{100 * x:+.1f}"


def rate(values: list) -> str:
    """'2 of 3 pass' over the submissions that measured it."""
    measured = [v for v in values if v is not None]
    return f"{sum(v is True for v in measured)} of {len(measured)} pass" if measured else "none measured"


# ---------------------------------------------------------------- the page's parts

def overview(record: dict | None) -> str:
    """The page's first lines: how many submissions of how many machines, or, with none, one line saying so."""
    subs = submissions(record)
    if not subs:
        return "No submissions have been gathered yet, so this page shows nothing."
    students = [s for s in subs if s["source"] == "student"]
    weeks = sorted({s["week"] for s in subs})
    course = " and the course's own records" if len(students) < len(subs) else ""
    return (f"{len(students)} student submission{'s' if len(students) != 1 else ''}{course}, of "
            f"{', '.join(w.replace('week', 'week ') for w in weeks)}. Each row below is one machine's run, labelled "
            "with its alias, hardware and library stack.") if students else (
        f"No student submission yet: the course's own records only, of "
        f"{', '.join(w.replace('week', 'week ') for w in weeks)}, labelled with their hardware and library stack.")


def machines_table(record: dict | None) -> str:
    subs = submissions(record)
    if not subs:
        return ""
    rows = [[who(s), esc(s["week"]), hardware(s), stack(s), esc(", ".join(s["profiles"]))] for s in subs]
    return table(["Who", "Week", "Hardware", "Library stack", "Profile"], rows)


def budget_minutes(subs: list[dict]) -> float | None:
    """The fine-tune budget the submissions' projections were held to, in minutes (the course's 40), or None."""
    budgets = [s["quantities"]["budget_s"] for s in subs if s["quantities"].get("budget_s")]
    return max(budgets) / 60 if budgets else None


def week1(subs: list[dict]) -> str:
    q = [s["quantities"] for s in subs]
    budget = budget_minutes(subs)
    head = (f"Bit-identical reload in a fresh process: {rate([x.get('bit_identical_reload') for x in q])}. "
            f"All three checks (same seed, kill and resume, reload): "
            f"{sum(x.get('checks_total', 0) and x.get('checks_passed') == x.get('checks_total') for x in q)} of "
            f"{sum(bool(x.get('checks_total')) for x in q)} machines. The projected full fine-tune of each machine's "
            f"profile, against the {f'{budget:.0f}-minute ' if budget else ''}budget:")
    rows = [[who(s), minutes(x.get("projected_total_s")), minutes(x.get("budget_s")),
             {True: "fits", False: "**over**", None: "not measured"}[x.get("fits")],
             f"{x.get('checks_passed', 0)} of {x.get('checks_total', 0)}", yes_no(x.get("bit_identical_reload")),
             pct(x.get("test_accuracy"))] for s, x in zip(subs, q)]
    return head + "\n\n" + table(["Who", "Projected (min)", "Budget (min)", "Fits", "Checks", "Reload",
                                  "Test accuracy"], rows)


def week2(subs: list[dict]) -> str:
    q = [s["quantities"] for s in subs]
    head = (f"LoRA adapter saved and reloaded onto a base built with another seed, identical logits: "
            f"{rate([x.get('lora_reload') for x in q])}.")
    rows = [[who(s), yes_no(x.get("lora_reload")), pct(x.get("lora_accuracy"))] for s, x in zip(subs, q)]
    return head + "\n\n" + table(["Who", "LoRA reload", "Test accuracy"], rows)


def fallback(x: dict) -> str:
    if x.get("whole_session_fallback"):
        return "whole session"
    if x.get("per_node_fallback"):
        return "per node"
    return "none" if "whole_session_fallback" in x else "not measured"


def ms(sub: dict, route: str, batch: str = "1") -> str:
    value = ms_value(sub, route, batch)
    return "not measured" if value is None else f"{value:.3g}"


def week4(subs: list[dict]) -> str:
    q = [s["quantities"] for s in subs]
    kinds = [fallback(x) for x in q]
    measured = [k for k in kinds if k != "not measured"]
    on_gpu = [fallback(x) for s, x in zip(subs, q) if s["machine"]["device"] == "cuda" and fallback(x) != "none"]
    head = (f"The silent CPU fallback (CUDA asked of ONNX Runtime, nodes run on the CPU with no error): "
            f"{measured.count('whole session')} of {len(measured)} runs fell back for the whole session, "
            f"{measured.count('per node')} per node. {len(on_gpu)} of them ran on a machine with a GPU; on a machine "
            "without one, asking for CUDA always falls back, which is what week 4 shows. Int8 (ONNX Runtime, "
            "qint8) against fp32 and against the half-precision route (fp16 on a GPU, bf16 on a CPU): size ratio "
            "(fp32 bytes over int8's), accuracy difference in points, and the median latency at batch 1 in ms.")
    placement = [[who(s), esc(s["machine"]["device"]), fallback(x),
                  stack(s, ("torch", "onnxruntime", "onnxruntime-gpu"))] for s, x in zip(subs, q)]
    rows = [[who(s), "not measured" if x.get("int8_size_ratio") is None else f"{x['int8_size_ratio']:.2f}",
             points(None if x.get("int8_accuracy") is None or x.get("fp32_accuracy") is None
                    else x["int8_accuracy"] - x["fp32_accuracy"]),
             f"{esc(x['half_route'])} {points(x['half_accuracy'] - x['fp32_accuracy'])}"
             if x.get("half_route") and x.get("half_accuracy") is not None and x.get("fp32_accuracy") is not None
             else "not measured",
             f"{ms(s, 'pytorch-fp32')} / {ms(s, 'onnx-int8-qint8')} / "
             f"{ms(s, x.get('half_route') or 'pytorch-bf16')}"] for s, x in zip(subs, q)]
    return (head + "\n\n" + table(["Who", "Device", "Fallback", "Libraries"], placement) + "\n\n"
            + table(["Who", "Int8 size ratio", "Int8 − fp32", "Half − fp32", "fp32 / int8 / half ms"], rows))


def other_week(subs: list[dict]) -> str:
    rows = [[who(s), esc(", ".join(s["records"])),
             f"{sum(s['quantities'].get('wall_s', {}).values()):.0f}"] for s in subs]
    return table(["Who", "Records it holds", "Measuring time (s)"], rows)


PARTS = {"week1": week1, "week2": week2, "week4": week4}


def week_markdown(record: dict | None, week: str) -> str:
    """A week's section: its heading, its quantities per machine; '' when no submission holds the week."""
    subs = submissions(record, week)
    if not subs:
        return ""
    return f"## {WEEK_TITLES[week]}\n\n" + PARTS.get(week, other_week)(subs) + "\n"


def failed(sub: dict) -> list[str]:
    """What broke in a submission: a failed check, a fallback on a machine with a GPU, a budget overrun."""
    x, out = sub["quantities"], []
    if x.get("bit_identical_reload") is False or x.get("checks_passed", 0) < x.get("checks_total", 0):
        out.append("week 1's checks")
    if x.get("lora_reload") is False:
        out.append("LoRA reload")
    if x.get("fits") is False:
        out.append(f"the {x['budget_s'] / 60:.0f}-minute budget" if x.get("budget_s") else "the budget")
    if sub["machine"]["device"] == "cuda" and fallback(x) in ("whole session", "per node"):
        out.append(f"{fallback(x)} fallback")
    return out


def versions_markdown(record: dict | None) -> str:
    """Every library and platform version seen, with the submissions that used it and what broke in them."""
    subs = submissions(record)
    if not subs:
        return ""
    seen: dict[tuple[str, str], list[dict]] = {}
    for s in subs:
        m = s["machine"]
        pairs = [(n, v) for n, v in (m.get("libraries") or {}).items() if v and n in LIBRARIES]
        pairs += [("python", m["python"]), ("platform", m["platform"]), ("lab", m.get("lab") or "?")]
        for pair in pairs:
            seen.setdefault(pair, []).append(s)
    rows = []
    for (name, version), users in sorted(seen.items()):
        broke = sorted({f for s in users for f in failed(s)})
        weeks: dict[str, list[str]] = {}
        for s in users:                              # 'the course (weeks 1, 2, 4)': one entry per submitter
            weeks.setdefault(who(s), []).append(s["week"].replace("week", ""))
        users_text = ", ".join(f"{w} (week{'s' if len(n) > 1 else ''} {esc(', '.join(n))})" for w, n in weeks.items())
        rows.append([esc(name), esc(version), users_text,
                     esc(", ".join(broke)) if broke else "nothing"])
    return ("## Versions seen\n\nEach library and platform version in a submission, who ran it, and what broke in "
            "those runs (a failed check, a fallback on a GPU, the budget overrun). A version beside a failure is a "
            "lead to check, not its proof.\n\n" + table(["Name", "Version", "Who", "What broke"], rows) + "\n")


def gathered_markdown(record: dict | None) -> str:
    """What the gathering refused and dropped (without file names: an LMS names files after students)."""
    if record is None:
        return ""
    refused, dups = record.get("refused") or [], record.get("duplicates") or []
    lines = [f"{len(submissions(record))} submission(s) counted, {len(refused)} refused, {len(dups)} resubmission(s) "
             "replaced by a later one."]
    lines += [f"- refused: {esc(r['reason'])}" for r in refused]
    lines += [f"- {esc(d['alias'])}'s {esc(d['week'])}: kept the one of {esc(d['kept'])}, dropped {esc(d['dropped'])}"
              for d in dups]
    return "\n".join(lines) + "\n"


def figure_label(sub: dict) -> str:
    """A row's label in a figure: plain text (matplotlib draws it; mathtext is off), at most 60 characters."""
    return f"{name(sub)}\n{machine_label(sub)[:40]}"   # two lines: a phone's width


def latency_figure(subs: list[dict]):
    """Week 4: each machine's median latency at batch 1 of fp32, int8 and the half-precision route, on a log axis;
    None when no submission measured one."""
    import matplotlib.pyplot as plt
    from lab.display import report
    marks = {"pytorch-fp32": ("o", "PyTorch fp32"), "onnx-int8-qint8": ("s", "ONNX Runtime int8"),
             "half": ("^", "PyTorch half precision")}
    points = [(i, key, ms) for i, s in enumerate(subs) for key, ms in (
        ("pytorch-fp32", ms_value(s, "pytorch-fp32")), ("onnx-int8-qint8", ms_value(s, "onnx-int8-qint8")),
        ("half", ms_value(s, s["quantities"].get("half_route") or "pytorch-bf16"))) if ms is not None]
    if not points:
        return None
    # at least 3.4 in tall: the legend goes under the axes at a fraction of their height, and a short axes
    # (one or two machines) would put it on the x label
    fig, ax = plt.subplots(figsize=(report.PHONE_FIG_WIDTH_IN, max(3.4, 2.2 + 0.55 * len(subs))))
    for key, (marker, label) in marks.items():
        xs = [(ms, i) for i, k, ms in points if k == key]
        if xs:
            ax.scatter([x for x, _ in xs], [y for _, y in xs], marker=marker, label=label, zorder=3)
    ax.set_yticks(range(len(subs)), [figure_label(s) for s in subs], fontsize=8)
    ax.set_ylim(len(subs) - 0.5, -0.5)
    values = [ms for _, _, ms in points]
    report.ms_log_x(ax, min(values), max(values))
    report.style(ax, xlabel="median latency at batch 1 (ms, log scale)")
    ax.grid(axis="x", alpha=0.3)
    report.legend_below(ax, ncols=1, y=-0.35)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    plt.close(fig)
    return fig


def ms_value(sub: dict, route: str, batch: str = "1"):
    return ((sub["quantities"].get("latency_ms") or {}).get(route) or {}).get(batch)


def spread_figure(record: dict | None, week: str):
    """The spread over machines of a week's measuring time (week 1: the projected fine-tune against the budget),
    one dot per machine, labelled; None when no submission holds the week."""
    subs = submissions(record, week)
    if not subs:
        return None
    import matplotlib
    import matplotlib.pyplot as plt
    from lab.display import report
    matplotlib.rcParams["text.parse_math"] = False         # a label's $ is a dollar, never maths
    if week == "week4" and (fig := latency_figure(subs)) is not None:
        return fig
    projected = week == "week1" and any(s["quantities"].get("projected_total_s") is not None for s in subs)
    budget = budget_minutes(subs) if projected else None
    values = [(s["quantities"].get("projected_total_s") / 60 if projected else
               sum(s["quantities"].get("wall_s", {}).values()) / 60) for s in subs]
    labels = [figure_label(s) for s in subs]
    fig, ax = plt.subplots(figsize=(report.PHONE_FIG_WIDTH_IN, 1.6 + 0.55 * len(subs)))
    ys = list(range(len(subs)))
    ax.scatter([v if v is not None else float("nan") for v in values], ys, zorder=3)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(len(subs) - 0.5, -0.5)                   # the first submission on top
    if budget:
        ax.axvline(budget, color="tab:red", lw=1)
        ax.text(budget, len(subs) - 0.5, "budget ", color="tab:red", fontsize=8, va="bottom", ha="right")
    report.style(ax, xlabel="projected full fine-tune (minutes)" if projected else "measuring time (minutes)")
    ax.set_xlim(left=0, right=max([v for v in values if v is not None] + [budget or 0]) * 1.1 or 1)
    ax.grid(axis="x", alpha=0.3)
    report.text_readable_on_a_phone(fig)
    fig.tight_layout()
    plt.close(fig)
    return fig


def show(record: dict | None) -> None:
    """The whole page body, in order: overview, machines, each week's section and spread, versions, gathering."""
    from IPython.display import Markdown, display
    display(Markdown(overview(record)))
    if not submissions(record):
        return
    display(Markdown(machines_table(record)))
    for week in WEEK_TITLES:
        part = week_markdown(record, week)
        if part:
            display(Markdown(part))
            display(spread_figure(record, week))
    display(Markdown(versions_markdown(record)))
    display(Markdown("## What the gathering refused\n\n" + gathered_markdown(record)))
