"""lab.checkpoint: bit-identical reload and resume, and safe failure on bad files. Smoke profile, tiny-bert.

The resume tests really kill (SIGKILL) or interrupt (SIGINT) a training subprocess mid-epoch. The child stops
at a fixed step and says so before the signal is sent, so the test does not depend on timing.
"""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from lab import checkpoint, checkpoint_checks, data, get_profile, models, train
from lab.record import paths

SHORT = checkpoint_checks.short_profile(get_profile("smoke"))   # 6 batches per epoch, 2 epochs


@pytest.fixture(scope="module")
def reference():
    """Fingerprint of an uninterrupted run of SHORT, and the trained model."""
    model, tokenizer = checkpoint_checks.fresh_run(SHORT)
    return checkpoint.fingerprint(checkpoint.weights(model)), model, tokenizer


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The last checkpoint of a finished training run of SHORT (with optimizer state), trained once."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    model, tokenizer = models.load(SHORT.model, seed=SHORT.seed)
    train.train(model, tokenizer, data.load_splits(SHORT), SHORT, checkpoint_dir=folder, progress=False)
    return checkpoint.latest(folder)


@pytest.fixture
def saved(tmp_path, finished):
    """A copy of that checkpoint, alone in a run folder, for a test to damage."""
    copy = tmp_path / "run" / finished.name
    shutil.copytree(finished, copy)
    return copy


# ---------------------------------------------------------------- bit-identical

def test_fingerprint_sees_a_single_bit():
    t = {"w": torch.zeros(4)}
    flipped = {"w": torch.zeros(4)}
    flipped["w"].view(torch.int32)[2] ^= 1          # the smallest subnormal: == 0.0 numerically, other bits
    assert checkpoint.fingerprint(t) != checkpoint.fingerprint(flipped)
    assert checkpoint.fingerprint(t) == checkpoint.fingerprint({"w": torch.zeros(4)})


def test_reload_in_a_fresh_process_gives_equal_logits(tmp_path, reference):
    _, model, tokenizer = reference
    row = checkpoint_checks.reload_check(model, tokenizer, SHORT, tmp_path)
    assert row["pass"], row
    assert row["max_abs_diff"] == 0.0


def test_finished_checkpoint_restores_weights_and_optimizer(saved, reference):
    model, _ = models.load(SHORT.model, seed=123)                    # other init: everything must come from disk
    optimizer = train.make_optimizer(model, SHORT)
    state = checkpoint.load(saved, model, optimizer=optimizer)
    assert checkpoint.fingerprint(checkpoint.weights(model)) == reference[0] == state["fingerprint"]
    assert state["position"] == {"epoch": 2, "batch": 0}
    steps = {float(s["step"]) for s in optimizer.state.values()}
    assert steps == {float(SHORT.epochs * 6)}


def test_resume_after_sigkill_mid_epoch_is_bit_identical(tmp_path, reference):
    row = checkpoint_checks.resume_check(SHORT, tmp_path / "run", reference=reference[0], every=4, stall_at=6)
    assert row["resumed_from"] == [4]                      # mid-epoch 1: 6 batches per epoch
    assert row["pass"], row


def test_resume_check_fails_when_rng_state_is_not_restored(tmp_path, reference, monkeypatch):
    # The check must be able to fail: without the saved RNG state, dropout masks after the resume differ.
    monkeypatch.setattr(checkpoint, "set_rng_state", lambda tensors, plain: None)
    row = checkpoint_checks.resume_check(SHORT, tmp_path / "run", reference=reference[0], every=4, stall_at=6)
    assert not row["pass"]


CTRL_C_CHILD = """
import sys
from lab import checkpoint_checks, data, get_profile, models, train
profile = checkpoint_checks.short_profile(get_profile("smoke"))
model, tokenizer = models.load(profile.model, seed=profile.seed)
steps = 0
def wait_for_parent(module, args):
    global steps
    if module.training:
        steps += 1
        if steps == 5:
            print("ready", flush=True)
            sys.stdin.readline()       # the parent sends Ctrl-C (SIGINT), then a line
model.register_forward_pre_hook(wait_for_parent)
train.train(model, tokenizer, data.load_splits(profile), profile, checkpoint_dir=sys.argv[1], progress=False)
"""


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, reference):
    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(paths.package_parent())})
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)                  # arrives inside step 5's forward pass
    child.stdin.write("\n")
    child.stdin.flush()
    out, err = child.communicate(timeout=120)
    assert child.returncode != 0 and "KeyboardInterrupt" in err and "resume=True" in err
    assert checkpoint.latest(folder).name == "step-000005"          # the step in flight finished, then saved
    model, tokenizer = models.load(SHORT.model, seed=SHORT.seed)
    history = train.train(model, tokenizer, data.load_splits(SHORT), SHORT, checkpoint_dir=folder, resume=True,
                          progress=False)
    assert history["resumed_from"] == [5]
    assert checkpoint.fingerprint(checkpoint.weights(model)) == reference[0]


# ---------------------------------------------------------------- bad input

def test_truncated_weights_name_the_file(saved):
    f = saved / checkpoint.MODEL_FILE
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        checkpoint.load(saved, model)


def test_flipped_byte_in_weights_fails_the_fingerprint(saved):
    f = saved / checkpoint.MODEL_FILE
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF                                           # inside the last tensor's data: header still valid
    f.write_bytes(bytes(raw))
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=r"model\.safetensors.*SHA-256.*corrupt or was replaced"):
        checkpoint.load(saved, model)


def test_flipped_bytes_in_the_optimizer_and_rng_state_are_caught_on_load(saved):
    f = saved / checkpoint.TENSORS_FILE
    raw = bytearray(f.read_bytes())
    middle = len(raw) // 2                                    # inside the tensors' data: the header is at the start
    raw[middle:middle + 64] = bytes(b ^ 0xFF for b in raw[middle:middle + 64])
    f.write_bytes(bytes(raw))
    model, _ = models.load(SHORT.model)
    checkpoint.load(saved, model)                             # the weights alone are intact and load
    with pytest.raises(checkpoint.CheckpointError, match=r"state\.safetensors.*SHA-256.*corrupt or was replaced"):
        checkpoint.load(saved, model, optimizer=train.make_optimizer(model, SHORT), restore_rng=True)


def test_an_edited_state_json_is_caught_on_load(saved):
    f = saved / checkpoint.STATE_FILE
    state = json.loads(f.read_text())
    state["position"]["batch"] += 1                           # valid JSON, plausible, wrong: resume would skip data
    f.write_text(json.dumps(state, indent=1))
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=r"state\.json: its content does not match its SHA-256"):
        checkpoint.load(saved, model)


def test_a_checkpoint_of_the_unchecked_format_1_is_a_mismatch_so_finetuned_retrains(saved):
    f = saved / checkpoint.STATE_FILE
    f.write_text(f.read_text().replace('"format": 2', '"format": 1'))
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.Mismatch, match="format 1"):
        checkpoint.load(saved, model)


def test_corrupt_state_json_names_the_file(saved):
    (saved / checkpoint.STATE_FILE).write_text('{"format": 1, "fingerpr')
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=r"state\.json is not valid JSON"):
        checkpoint.load(saved, model)


def test_missing_file_names_it(saved):
    (saved / checkpoint.TENSORS_FILE).unlink()
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=r"state\.safetensors is missing"):
        checkpoint.load(saved, model, optimizer=train.make_optimizer(model, SHORT))


def test_other_architecture_lists_the_differing_fields(saved):
    other = models.load_model("tiny-modernbert")
    with pytest.raises(checkpoint.Mismatch) as e:
        checkpoint.load(saved, other)
    assert "lab_model_key: 'tiny-bert' (checkpoint) vs 'tiny-modernbert' (now)" in str(e.value)
    assert "model_type" in str(e.value)
    three_labels = models.load_model("tiny-bert", num_labels=3)
    with pytest.raises(checkpoint.Mismatch, match=r"num_labels: 2 \(checkpoint\) vs 3 \(now\)"):
        checkpoint.load(saved, three_labels)


def test_resume_with_a_changed_config_lists_the_fields(saved):
    model, tokenizer = models.load(SHORT.model)
    changed = SHORT.but(lr=SHORT.lr / 2, grad_clip=0.5)
    with pytest.raises(checkpoint.Mismatch) as e:
        train.train(model, tokenizer, data.load_splits(changed), changed, checkpoint_dir=saved.parent,
                    resume=True, progress=False)
    message = str(e.value)
    assert f"lr: {SHORT.lr!r} (checkpoint) vs {SHORT.lr / 2!r} (now)" in message
    assert "grad_clip: 1.0 (checkpoint) vs 0.5 (now)" in message
    assert "batch_size" not in message


class Payload:
    """Unpickling this runs os.system: what a malicious 'checkpoint' from a classmate could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("victim", [checkpoint.MODEL_FILE, checkpoint.TENSORS_FILE, checkpoint.STATE_FILE])
@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickle_payload_fails_safely(saved, tmp_path, victim, how):
    marker = tmp_path / "pwned"
    if how == "pickle":
        (saved / victim).write_bytes(pickle.dumps(Payload(marker)))
    else:
        torch.save({"weights": Payload(marker)}, saved / victim)
    assert not marker.exists()
    model, _ = models.load(SHORT.model)
    with pytest.raises(checkpoint.CheckpointError, match=victim.replace(".", r"\.")):
        checkpoint.load(saved, model, optimizer=train.make_optimizer(model, SHORT), restore_rng=True)
    assert not marker.exists(), "loading a checkpoint ran code from a file"


def test_an_interrupted_write_leaves_the_previous_checkpoint(saved, monkeypatch):
    before = json.loads((saved / checkpoint.STATE_FILE).read_text())["fingerprint"]
    model, _ = models.load(SHORT.model, seed=7)
    real = checkpoint.save_file
    calls = []

    def dies_on_second_file(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", dies_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(saved, model, config={}, position={})         # overwrite the same folder
    assert json.loads((saved / checkpoint.STATE_FILE).read_text())["fingerprint"] == before
    assert checkpoint.latest(saved.parent) == saved
    assert [p.name for p in saved.parent.iterdir() if p.name.endswith(".tmp")] == []
