"""Every plot on the site fits the page's column, keeps its legend off the data and its labels apart, and
draws latencies as points on a log axis, not bars. Drawn from small made-up inputs of the shapes the pages pass:
the checks are about layout, which the numbers only move around."""
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from lab import errors  # noqa: E402
from lab.display import class_page, report
from lab.display import week1 as show1
from lab.display import week3 as show3
from lab.display import week4 as show4
from lab.display import week5 as show5
from lab.display import week6 as show6
from lab.site.check import site_pages
from lab.site.qmd import Page, parse_page

ROOT = Path(__file__).resolve().parents[1]

PROV = {"device": "cpu", "cpu": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "cpu_count": 2}
ROUTES = ["pytorch-fp32", "pytorch-int8", "onnx-fp32", "onnx-int8-qint8", "onnx-int8-quint8", "torch-compile"]


def history(steps=250, seed=0):
    rng = np.random.default_rng(seed)
    loss = np.clip(0.7 - np.linspace(0, 0.4, steps) + rng.normal(0, 0.12, steps), 0.05, None)
    return {"loss": loss.tolist(), "baseline": {"accuracy": 0.52},
            "epochs": [{"step": steps // 2, "val_accuracy": 0.78}, {"step": steps, "val_accuracy": 0.81}]}


def latency_record(ms=(16, 11, 6.6, 3.1, 4.0, 11), factor=22.0):
    rows = [{"route": r, "batch": b, "median_ms": m * (factor if b == 32 else 1),
             "p10_ms": 0.95 * m * (factor if b == 32 else 1), "p90_ms": 1.08 * m * (factor if b == 32 else 1)}
            for r, m in zip(ROUTES, ms) for b in (1, 32)]
    return {"result": {"model": "minilm", "routes": [{"route": r, "status": "ok"} for r in ROUTES], "latency": rows},
            "provenance": PROV}


def predictions(name, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, 1300)
    labels = (rng.uniform(0, 1, 1300) < p).astype(int)      # roughly calibrated, every bin well filled
    return errors.Predictions(name, labels, p, np.full(1300, 20), [""] * 1300)


def variants():
    names = [("full fine-tune, fp32", 91, 0.832, 16), ("full fine-tune, PyTorch int8", 59, 0.827, 11),
             ("full fine-tune, ONNX Runtime int8", 23, 0.836, 3.1), ("LoRA, merged, fp32", 91, 0.807, 15),
             ("distilled student, fp32", 62, 0.770, 6.1), ("distilled student, ONNX Runtime int8", 16, 0.762, 1.2)]
    # p10-p90 of +-10%, as the latency record holds them (lab.recipes.latency)
    return [{"variant": v, "size_mb": mb, "accuracy": acc,
             "latency": {1: {"median_ms": ms, "p10_ms": 0.9 * ms, "p90_ms": 1.1 * ms}}} for v, mb, acc, ms in names]


CLASS = class_page.load(ROOT / "course" / "class" / "class-record.json")


def page_figures():
    """name -> (the function a page calls to draw a figure, the arguments it is drawn from here)."""
    both = [predictions("full fine-tune", 0), predictions("LoRA", 1)]
    distill = {"rows": [{"model": m, "loss": history(seed=i)["loss"]} for i, m in
                        enumerate(["student, labels only", "student, distilled (T=2, α=0.5)",
                                   "student, distilled (T=4, α=0.5)"])]}
    return {
        "week 1 learning curve": (show1.learning_curve, (history(),)),
        "week 2 learning curve": (show1.learning_curve, (history(seed=3), "LoRA: training loss and validation "
                                                                          "accuracy")),
        "week 3 confusion": (show3.confusion_plot, (both,)),
        "week 3 reliability": (show3.reliability_plot, (both,)),
        "week 4 latency": (show4.latency_plot, ([latency_record()],)),
        "week 4 latency, CPU and GPU": (show4.latency_plot, ([latency_record(), latency_record(factor=3)],)),
        "week 5 loss": (show5.loss_plot, (distill,)),
        "week 6 pareto": (show6.plot, (variants(), 1, "Every variant on CPU: Intel(R) Xeon(R) Processor "
                                                      "(2 cores), batch 1", 1276)),
        # the class page draws inside class_page.show(), from the committed class record (three week 1 machines)
        "class week 1 spread": (class_page.spread_figure, (CLASS, "week1")),
        "class week 4 latency": (class_page.latency_figure, (class_page.submissions(CLASS, "week4"),)),
    }


def draw(name: str):
    function, args = page_figures()[name]
    return function(*args)


@pytest.fixture(params=list(page_figures()))
def figure(request):
    fig = draw(request.param)
    if not hasattr(fig.canvas, "get_renderer"):     # closed before it was returned (the class page's): savefig's
        FigureCanvasAgg(fig)                        # canvas, as the page's display gets it
    fig.canvas.draw()
    yield fig
    plt.close(fig)


def width_in(fig) -> float:
    """The width the page shows: Quarto saves figures with a tight bounding box, legends outside included."""
    return fig.get_tightbbox(fig.canvas.get_renderer()).width


def legend_covers_data(fig) -> list[str]:
    """Labels of the data points that fall inside a legend's box, in display coordinates."""
    covered = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        for other in fig.axes:
            for line in other.get_lines():
                xy = other.transData.transform(np.column_stack(line.get_data()).astype(float))
                if any(box.contains(x, y) for x, y in xy):
                    covered.append(line.get_label())
    return covered


def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of annotations/texts drawn in an axes whose boxes overlap."""
    pairs = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_text().strip()]
        boxes = [t.get_window_extent() for t in texts]
        pairs += [(texts[i].get_text(), texts[j].get_text()) for i in range(len(texts))
                  for j in range(i + 1, len(texts)) if boxes[i].overlaps(boxes[j])]
    return pairs


def test_every_page_figure_fits_the_column(figure):
    assert width_in(figure) <= report.FIG_WIDTH_IN, f"{width_in(figure):.2f} in wide"


def test_a_legend_beside_a_full_width_plot_is_caught_as_too_wide():
    fig, ax = plt.subplots(figsize=(report.FIG_WIDTH_IN, 4))
    ax.plot([1, 2], [1, 2], label="a fairly long label for a variant")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.canvas.draw()
    assert width_in(fig) > report.FIG_WIDTH_IN
    plt.close(fig)


def test_no_legend_covers_a_data_point(figure):
    assert legend_covers_data(figure) == []


def test_a_legend_placed_over_the_curve_is_caught():
    fig, ax = plt.subplots()
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50), label="diagonal")
    ax.legend(loc="center")
    fig.canvas.draw()
    assert legend_covers_data(fig) == ["diagonal"]
    plt.close(fig)


def test_no_two_labels_in_a_plot_overlap(figure):
    assert overlapping_texts(figure) == []


def test_the_old_reliability_counts_beside_each_point_are_caught_colliding():
    fig, ax = plt.subplots(figsize=(4.6, 4))
    for i, (x, y) in enumerate([(0.757, 0.690), (0.757, 0.695)]):     # two models' bins at the same spot
        ax.annotate(str(113 + 71 * i), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    fig.canvas.draw()
    assert overlapping_texts(fig) == [("113", "184")]
    plt.close(fig)


def test_latencies_are_points_on_a_log_axis_with_plain_labels_at_both_ends():
    fig = show4.latency_plot([latency_record()])
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert not [p for p in ax.patches if isinstance(p, Rectangle)], "bars on a log axis: their length means nothing"
    lo, hi = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi and t.get_text()]
    assert labels[0] == "2" and labels[-1] == "500" and len(labels) >= 6, labels   # 3.0 ms .. 380 ms of data
    plt.close(fig)


@pytest.mark.parametrize("value, up, step", [(3.1, False, 2), (3.1, True, 5), (380, True, 500), (1.2, False, 1),
                                             (0.7, False, 0.5), (20, True, 20), (20, False, 20)])
def test_step_125_rounds_to_the_1_2_5_series(value, up, step):
    assert report.step_125(value, up) == pytest.approx(step)


def legend_on_axis_label(fig) -> list[str]:
    """The x-axis labels of the figure that a legend's box overlaps (week 5's legend sat on its label)."""
    hits = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        hits += [other.xaxis.label.get_text() for other in fig.axes
                 if other.xaxis.label.get_text() and box.overlaps(other.xaxis.label.get_window_extent())]
    return hits


def test_no_legend_sits_on_an_axis_label(figure):
    assert legend_on_axis_label(figure) == []


def test_a_legend_placed_too_close_under_a_short_axes_is_caught_on_its_label():
    fig, ax = plt.subplots(figsize=(7, 3.2))        # week 5's figure height (its old legend touched the label)
    ax.plot([0, 1], [0, 1], label="a")
    ax.set_xlabel("optimizer step")
    report.legend_below(ax, y=-0.1)
    fig.tight_layout()
    fig.canvas.draw()
    assert legend_on_axis_label(fig) == ["optimizer step"]
    plt.close(fig)


def smallest_text_px_on_a_phone(fig) -> float:
    """The smallest text of `fig` in CSS px as a phone shows it: the figure is shown at its tight width (96 px an
    inch), shrunk to the phone's column when wider (report.PHONE_COLUMN_PX)."""
    from matplotlib.text import Text
    fig.canvas.draw()
    shown_px = width_in(fig) * 96
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * 96 / 72 * min(1.0, report.PHONE_COLUMN_PX / shown_px)


def test_every_page_figure_keeps_9_px_text_on_a_390_px_phone(figure):
    assert smallest_text_px_on_a_phone(figure) >= 9, f"{smallest_text_px_on_a_phone(figure):.1f} px"


def figure_functions(page: Page) -> list[str]:
    """'module.function' of lab.display that each figure cell of `page` (a `fig-` label) calls, its alias (`show1`
    in `from lab.display import week1 as show1`) resolved through the page's imports."""
    aliases = {}
    for cell in page.code_cells:
        for line in cell.code_lines:
            if m := re.match(r"\s*from lab\.display import (.+)", line):
                for name in m.group(1).split(","):
                    module, _, alias = name.strip().partition(" as ")
                    aliases[alias or module] = module
    calls = []
    for cell in page.code_cells:
        if (cell.label or "").startswith("fig-"):
            calls += [f"{aliases.get(alias, alias)}.{fn}" for line in cell.code_lines
                      for alias, fn in re.findall(r"\b(\w+)\.(\w+)\(", line)]
    return calls


def drawn_here() -> set[str]:
    return {f"{f.__module__.rsplit('.', 1)[1]}.{f.__name__}" for f, *_ in page_figures().values()}


@pytest.mark.parametrize("rel", site_pages(ROOT))
def test_every_figure_a_page_draws_is_drawn_by_these_tests(rel):
    missing = set(figure_functions(parse_page(ROOT / rel, ROOT))) - drawn_here()
    assert not missing, f"{rel} draws {sorted(missing)}: add it to page_figures() so its layout is checked"


def test_a_page_figure_missing_from_these_tests_is_caught(tmp_path):
    page = tmp_path / "page.qmd"
    page.write_text("```{python}\nfrom lab.display import week1 as show1, week9 as show9\n```\n\n"
                    "```{python}\n#| label: fig-new\nshow9.new_plot(r);\n```\n\n"
                    "```{python}\n#| label: fig-old\nshow1.learning_curve(h);\n```\n")
    calls = figure_functions(parse_page(page, tmp_path))
    assert calls == ["week9.new_plot", "week1.learning_curve"]
    assert set(calls) - drawn_here() == {"week9.new_plot"}


def test_a_full_width_figure_with_an_8_pt_legend_is_caught_unreadable_on_a_phone():
    fig, ax = plt.subplots(figsize=(report.FIG_WIDTH_IN, 4))
    ax.plot([1, 2], [1, 2], label="a")
    report.legend_below(ax)                   # the old default: 8 pt, in a 7 in figure
    fig.tight_layout()
    assert smallest_text_px_on_a_phone(fig) < 6
    plt.close(fig)
