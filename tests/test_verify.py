"""lab.recipes.verify: the scorecard passes a sound tiny model, and each check fails a candidate broken in its own way,
naming the reason. Plus the command line's answers to bad usage (exit 2, one line, no traceback)."""
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab import budget, config, lora, quantize, verify_checks
from lab.recipes import verify
from lab.display import scorecard

SMOKE = config.SMOKE
ROOT = Path(__file__).resolve().parent.parent


def _status(card, name):
    return scorecard.check(card, name)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return tmp_path_factory.mktemp("verify-records")


@pytest.fixture(scope="module")
def tiny_bert_record(records):
    with pytest.MonkeyPatch.context() as mp:     # a module fixture runs before conftest's per-test LAB_RECORDS
        mp.setenv("LAB_RECORDS", str(records))
        return verify.record("tiny-bert", SMOKE)


def test_a_sound_tiny_model_passes_every_check_but_the_licence_of_a_stand_in(tiny_bert_record):
    card = tiny_bert_record["result"]
    assert [c["name"] for c in card["checks"]] == list(verify.CHECKS)
    assert {c["name"]: c["status"] for c in card["checks"]} == {**{n: "pass" for n in verify.CHECKS},
                                                                 "licence": "warn"}
    assert "stand-in" in _status(card, "licence")["reason"]
    assert _status(card, "checkpoint")["numbers"]["max_abs_diff"] == 0.0
    assert _status(card, "onnx")["numbers"]["max_abs_diff"] <= verify.ONNX_ATOL
    assert all(c["seconds"] >= 0 and c["reason"] for c in card["checks"])


def test_the_scorecard_is_a_measurement_record_with_provenance(tiny_bert_record, records, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(records))
    assert tiny_bert_record["name"] == "verify/tiny-bert"
    assert tiny_bert_record["provenance"]["cpu"]
    assert verify.record("tiny-bert", SMOKE)["provenance"] == tiny_bert_record["provenance"]   # reused, not rerun


def test_a_module_left_out_of_the_adapter_fails_the_lora_check_naming_it(tmp_path):
    # DeBERTa-v2 saved as the hub's DeBERTa-v3 is, without a pooler: LoRA with peft's defaults leaves it random.
    folder = lora.pretrained_folder("tiny-deberta", tmp_path / "deberta-no-pooler", drop=("pooler",))
    card = verify.run(str(folder), SMOKE, ["lora"], say=lambda _: None)
    lora_check = _status(card, "lora")
    assert lora_check["status"] == "fail"
    assert "pooler" in lora_check["reason"] and "modules_to_save" in lora_check["reason"]
    assert lora_check["numbers"]["unsaved_random"] == ["pooler.dense.bias", "pooler.dense.weight"]


def test_a_model_that_cannot_be_exported_fails_the_onnx_check(tmp_path):
    subject = verify.Subject("tiny-bert", SMOKE, tmp_path)
    model, history = subject.run()
    # a head that computes a Bessel function: fine in PyTorch, but ONNX has no operator for it
    model.classifier.register_forward_hook(lambda m, i, out: out + 0 * torch.special.bessel_j0(out))
    subject.cache["trained"] = (model, history)
    check = verify.run_check("onnx", subject)
    assert check.status == "fail"
    assert "ONNX export failed" in check.reason and "ConversionError" in check.reason
    assert "\x1b" not in check.reason          # the exporter's colours are stripped from the one-line reason


def test_a_checkpoint_that_transformers_cannot_build_fails_the_loads_check_naming_the_error(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    check = verify.run_check("loads", verify.Subject(str(folder), SMOKE, tmp_path))
    assert check.status == "fail"
    assert check.reason.startswith("crashed: ") and "no-such-architecture" in check.reason


def test_state_the_checkpoint_does_not_carry_fails_the_checkpoint_check(tmp_path):
    subject = verify.Subject("tiny-bert", SMOKE, tmp_path)
    model, history = subject.run()
    # a buffer left out of the state_dict (persistent=False) that shifts the logits: the reload never sees it
    model.classifier.register_buffer("shift", torch.full((2,), 0.5), persistent=False)
    model.classifier.register_forward_hook(lambda m, i, out: out + m.shift)
    subject.cache["trained"] = (model, history)
    check = verify.run_check("checkpoint", subject)
    assert check.status == "fail" and "logits differ by up to 0.5" in check.reason


def test_an_unknown_licence_is_a_warning_a_non_commercial_one_fails_an_open_one_passes(tmp_path):
    folder = lora.pretrained_folder("tiny-bert", tmp_path / "bert")
    assert verify.run_check("licence", verify.Subject(str(folder), SMOKE, tmp_path)).status == "warn"
    for licence, status in (("cc-by-nc-4.0", "fail"), ("apache-2.0", "pass"), ("llama3", "warn")):
        (folder / "README.md").write_text(f"---\nlicense: {licence}\n---\n# a model\n")
        check = verify.run_check("licence", verify.Subject(str(folder), SMOKE, tmp_path))
        assert (check.status, check.numbers["licence"]) == (status, licence)


def test_the_budget_check_fails_when_the_t4_projection_exceeds_40_minutes(tmp_path, monkeypatch):
    subject = verify.Subject("tiny-bert", SMOKE, tmp_path)
    assert verify.run_check("budget", subject).status == "pass"
    monkeypatch.setattr(budget, "T4_SHARE_OF_PEAK", 1e-9)     # a T4 a billion times slower than assumed
    check = verify.run_check("budget", subject)
    assert check.status == "fail" and "over the 40-min budget" in check.reason
    assert check.numbers["t4_s_estimate"] > 40 * 60


def test_training_that_is_not_reproducible_fails_the_determinism_check(tmp_path):
    subject = verify.Subject("tiny-bert", SMOKE, tmp_path)
    load = subject.load

    def noisy(seed):       # noise from the OS, which no seed controls
        model, missing = load(seed)
        noise = random.SystemRandom().random()
        model.classifier.register_forward_pre_hook(lambda m, args: (args[0] + noise * m.training,))
        return model, missing
    subject.load = noisy
    check = verify.run_check("determinism", subject)
    assert check.status == "fail" and "different weights" in check.reason


def test_a_failing_int8_route_fails_the_int8_check_naming_the_route(tmp_path, monkeypatch):
    def broken(src, dst, weights):
        raise ValueError("no int8 kernel for this op")
    monkeypatch.setattr(quantize, "quantize_onnx", broken)
    check = verify.run_check("int8", verify.Subject("tiny-bert", SMOKE, tmp_path))
    assert check.status == "fail"
    assert "onnx-int8-qint8: ValueError: no int8 kernel for this op" in check.reason


def test_a_check_that_crashes_is_a_fail_row_and_the_others_still_run(monkeypatch):
    def crash(subject):
        raise KeyError("no such layer")
    monkeypatch.setitem(verify.FUNCTIONS, "licence", crash)
    card = verify.run("tiny-bert", SMOKE, ["licence", "loads"], say=lambda _: None)
    assert _status(card, "licence")["status"] == "fail"
    assert _status(card, "licence")["reason"].startswith("crashed: KeyError")
    assert _status(card, "loads")["status"] == "pass"
    assert verify.failed(card) == ["licence"]


# ---------------------------------------------------------------- the command line

def lab_verify(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "lab", "verify", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, says", [
    (["no-such-model"], "unknown model 'no-such-model'"),
    (["someone/some-model"], "hub is not reachable"),
    ([str(ROOT / "lab")], "not a transformers checkpoint"),
    (["tiny-bert", "--only", "licence,speed"], "unknown check(s) 'speed'"),
    (["modernbert-base"], "must come from the Hugging Face hub"),
], ids=["unknown key", "hub id offline", "not a checkpoint", "unknown check", "hub model offline"])
def test_bad_usage_is_one_line_and_exit_2(args, says):
    r = lab_verify(*args)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_command_prints_progress_a_table_and_json_and_exits_0_when_nothing_fails(tmp_path):
    out = tmp_path / "card.json"
    r = lab_verify("tiny-bert", "--profile", "smoke", "--only", "licence,loads,onnx", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "[verify] tiny-bert: onnx" in r.stdout or "stored record" in r.stdout
    assert "| check" in r.stdout and "| onnx" in r.stdout
    import json
    card = json.loads(out.read_text())
    assert [c["name"] for c in card["result"]["checks"]] == ["licence", "loads", "onnx"]
    assert card["provenance"]["cpu"]
