"""A read-only LAB_HOME (a Kaggle data set made from an earlier session's output): lab reads the earlier weeks'
records and models from it and writes new ones to a writable output folder (lab.record.paths)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from lab import checkpoint, config, train
from lab.record import paths, store

SMOKE = config.SMOKE


def _read_only(folder: Path):
    """Bind-mount `folder` onto itself read-only, as /kaggle/input is: as root, chmod stops no write."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (chmod alone would not stop root's writes either way)")
    try:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"mount --bind failed here ({getattr(e, 'stderr', '') or e}): no read-only folder to test with")
    done = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["umount", str(folder)], check=False)
        pytest.skip(f"remount read-only failed here ({done.stderr.strip()})")


@pytest.fixture
def kaggle_like(tmp_path, monkeypatch):
    """Week 1's outputs in a folder made read-only, as LAB_HOME; the working directory empty and writable."""
    for var in ("LAB_RECORDS", "LAB_RUNS", "LAB_OUTPUT", "LAB_REMEASURE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    home = tmp_path / "input" / "lab-output"
    monkeypatch.setenv("LAB_HOME", str(home))                     # week 1's session: a writable home
    week1 = store.measured("week1/finetune", _week1().finetune_record, profile=SMOKE, device="cpu")
    assert (home / "smoke" / "runs" / f"smoke-{SMOKE.model}").is_dir()
    _read_only(home)
    work = tmp_path / "working"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        yield home, work / paths.WORKING_FOLDER, week1
    finally:
        subprocess.run(["umount", str(home)], check=False)


def _week1():
    from lab.recipes import week1
    return week1


def test_week2_with_a_read_only_lab_home_reuses_week1_and_writes_to_the_working_folder(kaggle_like, capsys):
    from lab.recipes import week2
    home, out, week1_then = kaggle_like
    with pytest.raises(OSError):                                   # the home really is read-only
        (home / "probe").write_text("x")
    assert paths.read_only_home() == home and paths.output_home() == out
    capsys.readouterr()

    # week 2's page, as it runs: week 1's record first, then its own
    week1_now = store.measured("week1/finetune", _week1().finetune_record, profile=SMOKE, device="cpu")
    said = capsys.readouterr()
    assert week1_now == week1_then, "week 1's record was re-measured (its model retrained) instead of reused"
    assert "stored record" in said.out + said.err and "measuring on" not in said.out + said.err
    lora = store.measured("week2/lora", week2.lora_record, profile=SMOKE, device="cpu")
    assert lora["result"]["test"]

    # week 1's model: the run in the output folder is the read-only one's newest checkpoint, reloaded, not retrained
    run = train.run_dir(SMOKE)
    assert run == out / "smoke" / "runs" / f"smoke-{SMOKE.model}"
    steps_before = sorted(p.name for p in run.glob("step-*"))
    assert steps_before == [checkpoint.latest(home / "smoke" / "runs" / run.name).name]
    capsys.readouterr()
    model, _ = train.finetuned(SMOKE)
    assert "reloaded the finished run" in capsys.readouterr().out
    assert sorted(p.name for p in run.glob("step-*")) == steps_before
    assert checkpoint.fingerprint(checkpoint.weights(model)) == week1_then["result"]["fingerprint"]

    # week 2's outputs landed in the working folder; the read-only home is as week 1 left it
    key = store.hardware_key("cpu")
    assert json.loads((out / "smoke" / "measurements" / "week2" / "lora" / f"{key}.json").read_text()) == lora
    assert (out / "smoke" / "runs" / f"smoke-{SMOKE.model}-lora" / "adapter").is_dir()
    assert not (home / "smoke" / "measurements" / "week2").exists()
    assert not (home / "smoke" / "runs" / f"smoke-{SMOKE.model}-lora").exists()


def test_lab_output_names_the_writable_folder_and_a_writable_home_is_written_in_place(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_OUTPUT", raising=False)
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    assert paths.read_only_home() is None and paths.output_home() == tmp_path / "home"   # control: writable
    monkeypatch.setattr(paths, "writable", lambda folder: not str(folder).startswith(str(tmp_path / "home")))
    monkeypatch.chdir(tmp_path)
    assert paths.output_home() == (Path("/kaggle/working") if Path("/kaggle/working").is_dir() else tmp_path) \
        / "lab-output"
    monkeypatch.setenv("LAB_OUTPUT", str(tmp_path / "elsewhere"))
    assert paths.output_home() == tmp_path / "elsewhere"
    monkeypatch.setenv("LAB_OUTPUT", str(tmp_path / "home"))
    with pytest.raises(ValueError, match="LAB_OUTPUT"):           # read-only, and asked to write there
        paths.output_home()


def test_seeding_copies_what_the_output_lacks_and_keeps_what_it_has(tmp_path):
    source, target = tmp_path / "ro" / "runs", tmp_path / "out" / "runs"
    for step in ("step-000002", "step-000004"):
        (source / "a" / step).mkdir(parents=True)
        (source / "a" / step / "model.safetensors").write_text(step)
    (source / "a" / "adapter").mkdir()
    (source / "a" / ".lab.lock").write_text("")
    (source / "b" / "step-000001").mkdir(parents=True)
    (target / "b" / "step-000009").mkdir(parents=True)             # the output's own run of b wins
    paths.seed(source, target, runs=True)
    assert sorted(p.name for p in (target / "a").iterdir()) == ["adapter", "step-000004"]   # newest only
    assert sorted(p.name for p in (target / "b").iterdir()) == ["step-000009"]
    records_src, records_out = tmp_path / "ro" / "measurements", tmp_path / "out" / "measurements"
    (records_src / "week1" / "finetune").mkdir(parents=True)
    (records_src / "week1" / "finetune" / "cpu-x.json").write_text("{}")
    os.utime(records_src / "week1" / "finetune" / "cpu-x.json", (1_000_000, 1_000_000))
    (records_out / "week2").mkdir(parents=True)
    (records_out / "week2" / "cpu-x.json").write_text("mine")
    (records_src / "week2").mkdir()
    (records_src / "week2" / "cpu-x.json").write_text("theirs")
    paths.seed(records_src, records_out, runs=False)
    copied = records_out / "week1" / "finetune" / "cpu-x.json"
    assert copied.read_text() == "{}" and copied.stat().st_mtime == 1_000_000     # when it was measured, kept
    assert (records_out / "week2" / "cpu-x.json").read_text() == "mine"


def test_a_read_only_lab_home_that_does_not_exist_is_said_once(monkeypatch, tmp_path, capsys):
    for var in ("LAB_RECORDS", "LAB_RUNS"):
        monkeypatch.delenv(var, raising=False)
    missing = tmp_path / "input" / "not-attached" / "lab-output"
    monkeypatch.setenv("LAB_HOME", str(missing))
    monkeypatch.setenv("LAB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setattr(paths, "writable", lambda folder: not str(folder).startswith(str(tmp_path / "input")))
    assert store.records_dir("cpu") == tmp_path / "out" / "measurements"
    store.records_dir("cpu")
    said = capsys.readouterr()
    assert (said.out + said.err).count("does not exist") == 1 and "attached under that name" in said.out + said.err
