"""lab.lora: adapters that reload bit-identically in a fresh process on a base built with another seed, the trap
that breaks them (a random module left unsaved), and the errors for adapters that do not belong."""
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lab import checkpoint, config, data, lora, models, train
from lab.recipes import week2

SMOKE = config.SMOKE


def _trained(source: str, settings: lora.Settings, profile=SMOKE, seed: int = 0):
    """(LoRA model, missing, batch): a few smoke steps of LoRA on the base loaded from `source`."""
    base, missing = lora.load_base(source, seed=seed)
    model = lora.wrap(base, settings, seed=seed)
    tokenizer = models.load_tokenizer(profile.model)
    train.train(model, tokenizer, data.load_splits(profile), lora.train_profile(profile, settings), progress=False)
    return model, missing, lora.fixed_batch(tokenizer, profile)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    model, missing, batch = _trained("tiny-bert", lora.SETTINGS["smoke"])
    folder = lora.save(model, tmp_path_factory.mktemp("adapter") / "adapter", source="tiny-bert")
    return model, missing, batch, folder


@pytest.fixture(scope="module")
def deberta_without_pooler(tmp_path_factory):
    return lora.pretrained_folder("tiny-deberta", tmp_path_factory.mktemp("pretrained") / "deberta",
                                  drop=("pooler",))


def test_a_reloaded_adapter_gives_bit_identical_logits_in_a_fresh_process_on_another_seed(tiny_bert):
    model, _, batch, folder = tiny_bert
    result = lora.reload_check(model, folder, batch, seed=1)
    assert result["pass"] and result["max_abs_diff"] == 0.0
    assert result["logits_sha256"] == result["reloaded_sha256"]


def test_the_base_seed_really_differs_in_the_reload(tiny_bert):
    # The check is only a check if a base built with seed 1 is not the training base: its head differs.
    a, _ = lora.load_base("tiny-bert", seed=0)
    b, _ = lora.load_base("tiny-bert", seed=1)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)
    assert torch.equal(a.bert.embeddings.word_embeddings.weight, b.bert.embeddings.word_embeddings.weight)


def test_trap_check_names_the_pooler_of_deberta_and_the_reload_really_differs(deberta_without_pooler):
    model, missing, batch = _trained(str(deberta_without_pooler), lora.SETTINGS["smoke"],
                                     SMOKE.but(model="tiny-deberta"))
    assert set(missing) == {"pooler.dense.weight", "pooler.dense.bias", "classifier.weight", "classifier.bias"}
    trap = lora.trap_check(model, missing)
    assert not trap["pass"] and trap["modules"] == ["pooler"]
    assert "modules_to_save=['pooler']" in trap["message"]
    folder = lora.save(model, deberta_without_pooler.parent / "default", source=str(deberta_without_pooler))
    assert not lora.reload_check(model, folder, batch, seed=1)["pass"]     # what the trap check predicted


def test_trap_check_passes_with_the_pooler_saved_and_the_reload_is_bit_identical(deberta_without_pooler):
    settings = replace(lora.SETTINGS["smoke"], modules_to_save=("pooler",))
    model, missing, batch = _trained(str(deberta_without_pooler), settings, SMOKE.but(model="tiny-deberta"))
    assert lora.trap_check(model, missing)["pass"]
    folder = lora.save(model, deberta_without_pooler.parent / "with-pooler", source=str(deberta_without_pooler))
    assert lora.reload_check(model, folder, batch, seed=1)["pass"]


def test_modernbert_gets_lora_on_its_attention_and_mlp_projections():
    base, _ = lora.load_base("tiny-modernbert")
    model = lora.wrap(base, lora.SETTINGS["smoke"])
    adapted = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"Wqkv", "Wo", "Wi"}
    layers = base.config.num_hidden_layers
    assert sum(hasattr(m, "lora_A") for m in model.modules()) == 4 * layers   # Wqkv, attn.Wo, Wi, mlp.Wo


def test_an_unknown_architecture_is_refused_listing_its_linear_layers():
    class Mystery(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("Config", (), {"model_type": "mystery"})()
            self.fc_in, self.fc_out = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)

    with pytest.raises(ValueError, match=r"'mystery'.*fc_in, fc_out"):
        lora.target_modules(Mystery())


def test_an_adapter_for_another_base_is_refused_naming_both(tiny_bert, deberta_without_pooler):
    _, _, _, folder = tiny_bert
    other, _ = lora.load_base(str(deberta_without_pooler))
    with pytest.raises(checkpoint.Mismatch, match=r"'tiny-bert'.*'tiny-deberta'"):
        lora.load(folder, other)


def test_a_corrupt_adapter_file_is_named(tiny_bert, tmp_path):
    _, _, _, folder = tiny_bert
    copy = tmp_path / "adapter"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    raw = bytearray((copy / lora.ADAPTER_FILE).read_bytes())
    raw[-1] ^= 0xFF                                   # one flipped bit in the last weight
    (copy / lora.ADAPTER_FILE).write_bytes(bytes(raw))
    with pytest.raises(checkpoint.CheckpointError, match=str(copy / lora.ADAPTER_FILE)):
        lora.load(copy, seed=1)


class _Boom:
    def __reduce__(self):     # unpickling this would create the marker file
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_adapter_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    boom = _Boom()
    boom.marker = str(marker)
    (tmp_path / "adapter_model.bin").write_bytes(pickle.dumps(boom))
    with pytest.raises(checkpoint.CheckpointError, match="adapter_model.bin: a pickled adapter"):
        lora.load(tmp_path, seed=0)
    assert not marker.exists()


def test_merging_changes_logits_by_rounding_only(tiny_bert):
    model, _, batch, _ = tiny_bert
    merged = lora.merge_check(model, batch)
    assert merged["max_abs_diff"] < 1e-4 and merged["same_predictions"]


def test_a_changed_lora_setting_is_part_of_the_training_config():
    a = lora.train_profile(SMOKE, lora.SETTINGS["smoke"])
    b = lora.train_profile(SMOKE, replace(lora.SETTINGS["smoke"], r=8))
    assert a.lr == lora.SETTINGS["smoke"].lr and a.to_dict() != b.to_dict()


def test_week_3_reuses_week_2s_lora_run_instead_of_retraining(tmp_path, monkeypatch, capsys):
    pass  # (imports moved)
    monkeypatch.setenv("LAB_RUNS", str(tmp_path))
    rec = week2.lora_record(SMOKE)
    assert rec["reload"]["pass"] and rec["trap"]["pass"]
    trained_weights = checkpoint.fingerprint(checkpoint.weights(lora.load(lora.run_dir(SMOKE) / "adapter",
                                                                          seed=0).merge_and_unload()))
    capsys.readouterr()
    model, _ = lora.adapted(SMOKE)
    assert "reloaded the finished run" in capsys.readouterr().out
    assert checkpoint.fingerprint(checkpoint.weights(model.merge_and_unload())) == trained_weights
