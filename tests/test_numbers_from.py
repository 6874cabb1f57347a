"""A page names the model and hardware its numbers come from, read from the records, never typed."""
from __future__ import annotations

import json
from pathlib import Path

from lab.display import report

CPU = {"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2, "gpu": None,
       "libraries": {"torch": "2.13.0+cpu"}, "date": "2026-11-28T23:52:06+00:00"}
T4 = {**CPU, "device": "cuda", "gpu": {"name": "Tesla T4"}, "libraries": {"torch": "2.8.0+cu126"}}


def _record(prov: dict, model: str = "minilm", wall_s: float = 203.0) -> dict:
    return {"name": "week1/finetune", "config": {"profile": {"model": model}}, "provenance": prov,
            "wall_s": wall_s, "result": {}, "code": {}}


def test_the_sentence_names_each_records_model_and_hardware_and_the_real_setup():
    md = report.numbers_from([_record(CPU), _record(T4, "modernbert-base")], "training takes longer.").data
    assert "**minilm (sentence-transformers/all-MiniLM-L6-v2)** on **CPU: Intel(R) Xeon(R) Processor (2 cores)**" in md
    assert "**modernbert-base (answerdotai/ModernBERT-base)** on **GPU: Tesla T4**" in md
    assert md.endswith(f"On the course's real setup, {report.REAL_SETUP}, training takes longer.")


def test_no_record_says_nothing_was_measured_rather_than_naming_a_machine():
    assert "Nothing is measured yet" in report.numbers_from([], "x.").data


def test_remake_time_sums_the_wall_times_of_the_earlier_weeks_per_machine(tmp_path, monkeypatch):
    root = tmp_path / "records"             # its own: the session's records folder holds whatever tests ran before
    monkeypatch.setenv("LAB_RECORDS", str(root))
    for name, wall in (("week1/finetune", 200.0), ("week2/lora", 190.0)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu-intel-r-xeon-r-processor-2c.json").write_text(json.dumps({**_record(CPU, wall_s=wall),
                                                                                   "name": name}))
    assert report.remake_time(["week1/finetune", "week2/lora"], "cpu") == \
        "about 6 min on CPU: Intel(R) Xeon(R) Processor (2 cores)"
    assert report.remake_time(["week9/none"], "cpu") == "not measured yet on this profile"
