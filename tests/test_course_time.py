"""lab.display.course_time: each page's time here from its records, and the T4 estimate for the real course."""
import json

import pytest

from lab import budget, config
from lab.display import course_time
from lab.record import store

PAGE = "course/01-fine-tuning.qmd"


def _store(folder, name, key, wall_s, device="cpu", gpu=None, **extra):
    path = folder / name / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = {"device": device, "cpu": "Test CPU", "cpu_count": 2, "gpu": gpu, "date": "2026-12-01T00:00:00+00:00"}
    path.write_text(json.dumps({"name": name, "config": {}, "result": {}, "wall_s": wall_s, "provenance": prov,
                                **extra}))


def test_the_opening_line_sums_the_wall_time_of_the_pages_own_records(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    key = store.hardware_key("cpu")
    _store(tmp_path, "week1/finetune", key, 200.0)
    _store(tmp_path, "week1/checks", key, 40.0)
    line = course_time.opening_line(PAGE, config.CPU)
    assert "4.0 min for this page's measurements" in line and "estimate" in line and "T4" in line


def test_a_missing_record_is_named_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    _store(tmp_path, "week1/finetune", store.hardware_key("cpu"), 200.0)
    line = course_time.opening_line(PAGE, config.CPU)
    assert "not recorded yet" in line and "week1/checks" in line and "min for this page" not in line


def test_a_t4_record_replaces_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    for name, s in (("week1/finetune", 100.0), ("week1/checks", 20.0)):
        _store(tmp_path, name, "cuda-tesla-t4", s, device="cuda", gpu={"name": "Tesla T4"})
    line = course_time.opening_line(PAGE, config.CPU)
    assert "2.0 min, measured on a T4" in line and "estimate" not in line


def test_a_synthetic_t4_record_never_replaces_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    for name in ("week1/finetune", "week1/checks"):
        _store(tmp_path, name, "cuda-tesla-t4", 60.0, device="cuda", gpu={"name": "Tesla T4"}, synthetic=True)
    line = course_time.opening_line(PAGE, config.CPU)
    assert "estimate" in line and "measured on a T4" not in line


def test_the_t4_estimate_is_flops_over_the_assumed_rate(monkeypatch):
    est = course_time.t4_estimate(PAGE)
    assert est["seconds"] == pytest.approx(est["flops"] / budget.t4_rate())
    monkeypatch.setattr(budget, "T4_SHARE_OF_PEAK", budget.T4_SHARE_OF_PEAK / 2)
    assert course_time.t4_estimate(PAGE)["seconds"] == pytest.approx(2 * est["seconds"])


def test_an_unknown_page_is_an_error_naming_the_pages():
    with pytest.raises(ValueError, match="course/01-fine-tuning.qmd"):
        course_time.opening_line("course/07-nope.qmd", config.CPU)


def test_a_fresh_session_counts_everything_it_remakes_first(tmp_path, monkeypatch):
    # week 4's latency record times week 2's LoRA model and week 5's students: a fresh session remakes all three
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    key = store.hardware_key("cpu")
    for name, s in (("week1/finetune", 139.0), ("week2/lora", 134.0), ("week5/distill", 219.0),
                    ("week4/routes", 80.0), ("week4/placement", 11.0), ("latency/variants", 104.0)):
        _store(tmp_path, name, key, s)
    line = course_time.opening_line("course/04-quantization.qmd", config.CPU)
    assert "week 1's model, week 2's LoRA run and week 5's students: 8.2 min more" in line      # 492 s
    assert "3.2 min for this page's measurements" in line and "11.4 min in all" in line         # 195 s; 687 s


def test_reading_time_counts_the_prose_not_the_code(tmp_path):
    (tmp_path / "course").mkdir()
    page = tmp_path / "course" / "p.qmd"
    page.write_text("---\ntitle: t\n---\n\nOne two three `{python} f(x)` four.\n\n```{python}\nnot = counted\n```\n")
    assert course_time.reading_words("course/p.qmd", tmp_path) == 5       # the inline value reads as one word
    assert course_time.reading_words("course/none.qmd", tmp_path) is None
