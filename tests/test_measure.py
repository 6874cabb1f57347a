import importlib
import json
import os
import sys
import time

import pytest

from lab.record import fingerprint, store
from lab.config import PROFILES

calls = []


def double(x):
    calls.append(x)
    return {"y": 2 * x, "pair": (x, x)}


def test_measured_runs_once_then_returns_the_stored_record(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    calls.clear()
    first = store.measured("t/double", double, x=3)
    second = store.measured("t/double", double, x=3)
    assert calls == [3]
    assert first == second
    assert first["result"] == {"y": 6, "pair": [3, 3]}          # stored as plain JSON
    assert first["config"] == {"x": 3}
    for key in ("cpu", "python", "libraries", "git", "date", "ort_providers"):
        assert key in first["provenance"]
    path = tmp_path / "t" / "double" / f"{store.hardware_key()}.json"
    assert json.loads(path.read_text()) == first


def test_config_change_and_remeasure_force_a_fresh_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    calls.clear()
    store.measured("t/double", double, x=3)
    store.measured("t/double", double, x=4)                   # config changed: stale
    monkeypatch.setenv("LAB_REMEASURE", "1")
    monkeypatch.setenv("LAB_REMEASURE_SINCE", repr(time.time() + 1))     # a run that starts after that record
    store.measured("t/double", double, x=4)
    assert calls == [3, 4, 4]


def test_remeasure_measures_each_record_once_per_run(tmp_path, monkeypatch):
    # Week 6 reads the records of weeks 2-5: under LAB_REMEASURE=1 the run must not train them all a second time.
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    calls.clear()
    store.measured("t/double", double, x=3)                     # an earlier run's record
    monkeypatch.setenv("LAB_REMEASURE", "1")
    monkeypatch.setenv("LAB_REMEASURE_SINCE", repr(time.time() + 1))
    time.sleep(1.1)                                                # this run's writes come after its start
    store.measured("t/double", double, x=3)                     # re-measured: made before this run
    store.measured("t/double", double, x=3)                     # kept: this run made it
    assert calls == [3, 3]


def test_code_change_marks_the_record_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path / "records"))
    src = tmp_path / "mod_under_test.py"
    src.write_text("def f(x):\n    return {'v': x}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("mod_under_test")
    rec = store.measured("t/code", mod.f, x=1)
    assert store.staleness(rec) == []
    src.write_text("def f(x):\n    return {'v': x + 1}\n")
    assert any("code changed in mod_under_test" in w for w in store.staleness(rec))
    assert any("code changed" in row["stale"] for row in store.status(tmp_path / "records"))
    sys.modules.pop("mod_under_test", None)


def test_fingerprint_follows_lab_imports():
    # week 1's recipe imports lab.train, which imports lab.data and lab.config: a change to any of them must change
    # its records' fingerprint; lab.record.* (the store, the lock) never does.
    modules = set(fingerprint.code_modules("lab.recipes.week1"))
    assert {"lab.recipes.week1", "lab.train", "lab.data", "lab.config"} <= modules
    assert not {m for m in modules if m.startswith("lab.record")}


def test_a_failed_write_leaves_the_previous_record_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    store.write_atomic(path, '{"old": true}')

    def killed(*a, **k):
        raise KeyboardInterrupt   # as if the process died between writing the temp file and renaming it
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write_atomic(path, '{"new": true}')
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]      # no temp file left behind


def test_smoke_profile_never_writes_into_the_committed_record(monkeypatch):
    monkeypatch.delenv("LAB_RECORDS", raising=False)
    committed = store.records_dir("cpu")
    assert store.records_dir("smoke") != committed
    before = sorted(committed.rglob("*")) if committed.exists() else []
    rec = store.measured("t/smoke-only", lambda profile, x: {"x": x}, profile=PROFILES["smoke"], x=1)
    after = sorted(committed.rglob("*")) if committed.exists() else []
    assert before == after
    assert rec["config"]["profile"]["name"] == "smoke"


def test_a_profile_other_than_cpu_or_gpu_keeps_its_records_out_of_the_committed_folder(monkeypatch):
    from lab.record import paths
    monkeypatch.delenv("LAB_RECORDS", raising=False)
    monkeypatch.delenv("LAB_RUNS", raising=False)
    committed = store.records_dir("cpu")
    assert store.records_dir(None) == store.records_dir("gpu") == committed       # the control
    for name in ("smoke", "rehearsal"):
        assert store.records_dir(name) == paths.smoke_dir("records", name) and name in store.records_dir(name).name
        assert paths.runs_dir(name) != paths.runs_dir("cpu")


def test_records_from_two_devices_live_side_by_side(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    store.measured("t/side", double, x=1)
    gpu_prov = {"cpu": "x", "cpu_count": 2, "gpu": {"name": "Tesla T4"}}
    assert store.hardware_key("cuda", gpu_prov) == "cuda-tesla-t4"
    fake = json.loads((tmp_path / "t" / "side" / f"{store.hardware_key()}.json").read_text())
    fake["provenance"].update(device="cuda", gpu={"name": "Tesla T4"})
    (tmp_path / "t" / "side" / "cuda-tesla-t4.json").write_text(json.dumps(fake))
    labels = sorted(r["provenance"]["device"] for r in store.load_all("t/side"))
    assert labels == ["cpu", "cuda"]


def test_bad_record_names_are_refused():
    with pytest.raises(ValueError, match="week1/finetune"):
        store.record_path("../escape", "cpu-x")


@pytest.mark.parametrize("remeasure", ["", "1"])
def test_a_truncated_record_is_named_and_remeasured(tmp_path, monkeypatch, capsys, remeasure):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    monkeypatch.setenv("LAB_REMEASURE", remeasure)
    calls.clear()
    first = store.measured("t/double", double, x=3)
    path = tmp_path / "t" / "double" / f"{store.hardware_key()}.json"
    path.write_text(path.read_text()[:100])                       # a kill or a full disk mid-copy
    capsys.readouterr()
    again = store.measured("t/double", double, x=3)
    said = capsys.readouterr().out
    assert calls == [3, 3]                                         # measured again, not trusted, no crash
    assert again["result"] == first["result"]
    assert json.loads(path.read_text()) == again                   # the new record replaced the broken one
    if not remeasure:
        assert str(path) in said and "re-measuring" in said


def test_a_json_file_that_is_not_a_record_is_unreadable_too(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("[1, 2]")
    with pytest.raises(store.Unreadable, match="not a measurement record"):
        store.read(path)
    assert store.read(tmp_path / "missing.json") is None


def test_an_unreadable_record_of_other_hardware_is_left_out_of_the_page_and_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    store.measured("t/side", double, x=1)
    (tmp_path / "t" / "side" / "cuda-tesla-t4.json").write_text('{"name": "t/side", "res')
    records = store.load_all("t/side")
    assert [r["provenance"]["device"] for r in records] == ["cpu"]
    assert "cuda-tesla-t4.json" in capsys.readouterr().out


# ---- noisy records (measured on a busy machine) and the records a page showed --------------------------------

NOISY = {"why": "p10-p90 spread 0.89 of the median at batch 1", "load": [2.1, 1.9]}


def sometimes_noisy(x, noisy=None):
    calls.append(x)
    return {"y": x, "noisy": noisy}


def test_a_noisy_result_is_marked_on_the_record_and_a_quiet_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    assert store.measured("t/noisy", sometimes_noisy, x=1, noisy=NOISY)["noisy"] == NOISY
    assert "noisy" not in store.measured("t/quiet", sometimes_noisy, x=1)           # None: not marked
    [row] = [r for r in store.status(tmp_path) if r["measurement"] == "t/noisy"]
    assert row["mark"].startswith("noisy: p10-p90 spread") and "2.1, 1.9" in row["mark"]
    assert [r["mark"] for r in store.status(tmp_path) if r["measurement"] == "t/quiet"] == [""]


def test_a_noisy_record_is_reused_within_its_run_and_remeasured_by_the_next_saying_so(tmp_path, monkeypatch,
                                                                                        capsys):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    monkeypatch.setenv("LAB_REMEASURE_SINCE", repr(time.time() - 1))     # this run started a moment ago
    calls.clear()
    store.measured("t/noisy", sometimes_noisy, x=1, noisy=NOISY)
    capsys.readouterr()
    store.measured("t/noisy", sometimes_noisy, x=1, noisy=NOISY)      # a later page of the same run
    assert calls == [1]
    assert "the next run re-measures it" in capsys.readouterr().out
    monkeypatch.setenv("LAB_REMEASURE_SINCE", repr(time.time() + 1))     # the next run
    time.sleep(0.01)
    store.measured("t/noisy", sometimes_noisy, x=1, noisy=NOISY)
    assert calls == [1, 1]
    assert "re-measuring: the stored record was measured noisy (p10-p90 spread" in capsys.readouterr().out


def test_a_quiet_record_of_an_earlier_run_is_reused_the_control(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    calls.clear()
    store.measured("t/quiet", sometimes_noisy, x=1)
    monkeypatch.setenv("LAB_REMEASURE_SINCE", repr(time.time() + 1))     # the next run
    store.measured("t/quiet", sometimes_noisy, x=1)
    assert calls == [1]


def test_the_records_a_process_showed_are_listed_once_with_the_hash_of_their_file(tmp_path, monkeypatch):
    import hashlib
    from lab.record import records_used
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path))
    records_used.forget()
    store.measured("t/noisy", sometimes_noisy, x=1, noisy=NOISY)
    store.measured("t/double", double, x=3)
    store.load_all("t/double")                                          # read again: listed once
    path = tmp_path / "t" / "double" / f"{store.hardware_key()}.json"
    listed = records_used.used_records()
    assert [(e["name"], e["hardware"]) for e in listed] == [("t/noisy", path.stem), ("t/double", path.stem)]
    assert listed[1]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert listed[0]["noisy"] == NOISY and "noisy" not in listed[1]
    records_used.forget()
