"""The rehearsal in CI: the `gpu` profile's code paths on ModernBERT's architecture, at smoke size
(`rehearsal-smoke`: the tiny ModernBERT config), in-process, records and runs in a temp folder.

Each test is a page's measurement on the rehearsal profile: week 1's fine-tune and projection, week 2's LoRA on
ModernBERT's Wqkv/Wo/Wi with its trap, reload and merge checks, week 4's ONNX export and int8 routes, week 5's
teacher logits from ModernBERT (cached, keyed by its weights) and the student distilled from them, and the scorecard.
The full-size rehearsal (ModernBERT-base's 149M parameters, every page end to end) is the README's command.
"""
import os
from pathlib import Path

import pytest

from lab import config, distill, lora, precision, quantize, train
from lab.display import claims, course_time
from lab.record import store
from lab.recipes import verify
from lab.site import render_pages
from lab.site.check import check_site
from lab.recipes import week1
from lab.recipes import week2

R = config.REHEARSAL_SMOKE


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One records and runs folder for the module: later weeks reuse week 1's run, as the pages do."""
    root = tmp_path_factory.mktemp("rehearsal")
    saved = {k: os.environ.get(k) for k in ("LAB_RECORDS", "LAB_RUNS", "LAB_PROFILE")}
    os.environ.update(LAB_RECORDS=str(root / "records"), LAB_RUNS=str(root / "runs"), LAB_PROFILE=R.name)
    yield root
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_the_rehearsal_fine_tunes_modernbert_and_projects_the_full_workload(folders):
    r = store.measured("week1/finetune", week1.finetune_record, profile=R, device="cpu")["result"]
    assert r["model"]["key"] == "tiny-modernbert"
    assert r["history"]["precision"] == precision.precision_for("cpu")    # the CPU's own: bf16 where native, else fp32
    assert r["projection"]["workload"]["examples"] == 10_201 and r["projection"]["workload"]["epochs"] == R.epochs
    assert "gpu" not in r["projection"]["workload"]["question"]       # week 1 projects its own profile's recipe


def test_lora_on_modernbert_adapts_wqkv_wo_wi_and_reloads_bit_identically(folders):
    r = store.measured("week2/lora", week2.lora_record, profile=R, device="cpu")["result"]
    assert set(r["targets"]) == {"Wqkv", "Wo", "Wi"}
    assert r["settings"]["r"] == lora.settings_for(config.GPU).r             # the T4 course's rank and rate
    assert r["trap"]["pass"] and r["reload"]["pass"] and r["merge"]["same_predictions"]


def test_modernbert_exports_to_onnx_and_quantizes_to_int8(folders):
    model, tokenizer = train.finetuned(R)
    res = quantize.compare_routes(model.cpu().eval(), tokenizer, R, "cpu",
                                  ["onnx-fp32", "onnx-int8-qint8", "pytorch-int8"])
    status = {r["route"]: (r["status"], r["reason"]) for r in res["routes"]}
    assert all(s == "ok" for s, _ in status.values()), status
    onnx = next(r for r in res["routes"] if r["route"] == "onnx-fp32")
    assert onnx["max_logit_diff"] < 1e-4                              # the export computes the same logits


def test_week5_caches_modernberts_logits_keyed_by_its_weights_and_distils_minilm(folders):
    logits = distill.teacher_logits(R)
    cache = train.run_dir(R).with_name(train.run_dir(R).name + "-teacher") / distill.LOGITS_FILE
    stamp = cache.stat().st_mtime_ns
    assert distill.teacher_logits(R).equal(logits) and cache.stat().st_mtime_ns == stamp    # read, not recomputed
    assert distill.student_key(R) == distill.student_key(config.GPU) == "minilm-l2"
    model, _ = distill.student(R, distill.SWEEP[0], logits=logits)
    assert model.config.num_hidden_layers == 2 and "per snippet" in distill.student_why()


def test_the_scorecard_of_the_rehearsal_checks_modernbert(folders):
    (model, only), = verify.PAGE[R.name]
    card = verify.run(model, R, only=["loads", "budget", "onnx"], say=lambda *_: None)
    by = {c["name"]: c for c in card["checks"]}
    assert all(c["status"] == "pass" for c in by.values()), by
    assert by["budget"]["numbers"]["workload"]["epochs"] == config.GPU.epochs      # the course's recipe


def test_claims_only_warn_under_the_rehearsal(folders, monkeypatch):
    monkeypatch.setenv("LAB_PAGE", "course/01-fine-tuning.qmd")      # a site render: a student's notebook never stops
    with pytest.warns(UserWarning, match="rehearsal-smoke profile, not enforced"):
        assert claims.expect(False, "an accuracy claim", accuracy=0.5) is False


def test_a_rehearsal_page_carries_the_marker_and_lab_check_refuses_it(folders, tmp_path):
    assert course_time.marker(R).startswith("**Not for publication:**")
    assert course_time.marker(config.CPU) == ""
    (tmp_path / "index.qmd").write_text('---\ntitle: "P"\n---\n\n```{python}\nfrom lab import get_profile\n'
                                        'profile = get_profile()\n```\n')
    for name in ("rehearsal", "rehearsal-smoke"):
        render_pages([Path("index.qmd")], tmp_path, env={"LAB_PROFILE": name})
        problems = check_site(tmp_path)
        assert len(problems) == 1 and f"{name} profile" in problems[0]
