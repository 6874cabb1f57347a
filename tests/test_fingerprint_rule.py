"""The fingerprint rule (lab.record.fingerprint): a record goes stale when its recipe or the library under it changes,
and never for an edit to display, the record machinery or the site. Checked on the committed records: an edit is
simulated by appending a comment to one module's source, as an editor would, without touching the checkout."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import lab
from lab import data, models, train
from lab.config import PROFILES
from lab.record import fingerprint, store

RECORDS = Path(lab.__file__).parent.parent / "course" / "measurements"
TIMING = {"latency/variants"}        # the records that time something through lab.bench's harness


def committed() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in sorted(RECORDS.rglob("*.json")):
        out.setdefault(p.parent.relative_to(RECORDS).as_posix(), []).append(json.loads(p.read_text()))
    return out


def stale_after(monkeypatch, tmp_path, module: str | None) -> set[str]:
    """The committed records that are stale once `module`'s source has a comment appended (None: no edit)."""
    if module is not None:
        real = fingerprint.module_file(module)
        edited = tmp_path / f"{module}.py"
        edited.write_text(real.read_text() + "\n# an edit that changes no behaviour\n")
        original = fingerprint.module_file
        monkeypatch.setattr(fingerprint, "module_file", lambda name: edited if name == module else original(name))
    return {name for name, recs in committed().items()
            if any(store.staleness(r, profiles=PROFILES) for r in recs)}


def test_every_committed_record_is_fresh(monkeypatch, tmp_path):
    assert committed(), f"no records under {RECORDS}"
    assert stale_after(monkeypatch, tmp_path, None) == set()


@pytest.mark.parametrize("module", ["lab.display.week4", "lab.display.report", "lab.display.latency",
                                    "lab.record.lock", "lab.record.store", "lab.record.env", "lab.site.render"])
def test_a_display_or_record_machinery_edit_leaves_every_record_fresh(monkeypatch, tmp_path, module):
    assert stale_after(monkeypatch, tmp_path, module) == set()


def test_an_edit_to_the_harness_stales_only_what_times_something(monkeypatch, tmp_path):
    assert stale_after(monkeypatch, tmp_path, "lab.bench") == TIMING


@pytest.mark.parametrize("recipe, names", [("lab.recipes.week3", {"week3/errors"}),
                                           ("lab.recipes.week1", {"week1/finetune", "week1/checks"})])
def test_an_edit_to_one_recipe_stales_only_its_records(monkeypatch, tmp_path, recipe, names):
    assert stale_after(monkeypatch, tmp_path, recipe) == names


def test_an_edit_to_the_training_loop_stales_every_record_that_trains(monkeypatch, tmp_path):
    # the control: a library edit does reach the records above it (or the tests above could pass vacuously)
    stale = stale_after(monkeypatch, tmp_path, "lab.train")
    assert {"week1/finetune", "week2/lora", "week5/distill", "latency/variants"} <= stale


def test_the_walk_follows_submodule_and_relative_imports(tmp_path):
    src = tmp_path / "probe.py"
    src.write_text("from lab.recipes import week1\nfrom lab.display import latency as lat\n"
                   "from . import week2\nfrom .week5 import distill_record\nfrom lab.train import evaluate\n")
    found = fingerprint.lab_imports("lab.recipes.probe", src)
    assert {"lab.recipes.week1", "lab.display.latency", "lab.recipes.week2", "lab.recipes.week5",
            "lab.train"} <= found
    # and so a recipe imported as `from lab.recipes import week2` is in the latency record's fingerprint
    assert "lab.recipes.week2" in fingerprint.code_modules("lab.recipes.latency")
    assert not any(m.startswith(("lab.record", "lab.display", "lab.site"))
                   for m in fingerprint.code_modules("lab.recipes.latency"))


def test_a_checkpoint_trained_by_other_code_is_not_reused(tmp_path, monkeypatch, capsys):
    smoke = PROFILES["smoke"]
    folder = tmp_path / "run"
    build = lambda: models.load(smoke.model, seed=smoke.seed)      # noqa: E731
    train.trained(build, smoke, folder)
    monkeypatch.setattr(train, "training_code", lambda: "code-of-another-day")
    steps = []
    real_step = train.step
    monkeypatch.setattr(train, "step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    capsys.readouterr()
    train.trained(build, smoke, folder)
    out = capsys.readouterr().out
    assert "code:" in out and "code-of-another-day" in out      # says why it does not reuse the run
    assert steps, "the stored run was reused although another code trained it"
    assert len(data.load_splits(smoke).train) // smoke.batch_size <= len(steps)
