import pytest
import torch
from safetensors.torch import load_file

from lab import models


def test_every_entry_states_licence_and_whether_weights_are_real():
    for c in models.REGISTRY.values():
        assert c.licence and c.weights in ("real", "random")
    assert models.get("minilm").weights == "real"
    assert models.get("modernbert-base").hub_id == "answerdotai/ModernBERT-base"
    assert models.get("deberta-v3-base").hub_id == "microsoft/deberta-v3-base"


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="minilm"):
        models.get("gpt-5")


def test_minilm_loads_the_packaged_weights():
    # Reference: the safetensors file in the package, read directly.
    model = models.load_model("minilm")
    ref = load_file(str(models.minilm_path() / "model.safetensors"))
    key = next(k for k in ref if k.endswith("word_embeddings.weight"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, ref[key])
    assert 22_000_000 < models.n_params(model) < 23_500_000


def test_hub_model_offline_names_the_alternatives(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    monkeypatch.setattr(models, "_hub_cached", lambda hub_id: False)
    with pytest.raises(models.ModelUnavailable) as e:
        models.load_model("modernbert-base")
    assert "answerdotai/ModernBERT-base" in str(e.value) and "minilm" in str(e.value)


def test_hub_model_uses_the_hub_id_when_reachable(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    assert models.pretrained_source("deberta-v3-base") == "microsoft/deberta-v3-base"


def test_gpu_profile_falls_back_to_cpu_offline(monkeypatch, capsys):
    from lab.config import PROFILES
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    monkeypatch.setattr(models, "_hub_cached", lambda hub_id: False)
    assert models.resolve_profile(PROFILES["gpu"]).name == "cpu"
    assert "falling back" in capsys.readouterr().out


@pytest.mark.parametrize("key,arch", [("tiny-bert", "bert"), ("tiny-modernbert", "modernbert"),
                                      ("tiny-deberta", "deberta-v2")])
def test_tiny_models_are_the_named_architecture_and_run(key, arch):
    model, tok = models.load(key)
    assert model.config.model_type == arch
    batch = tok(["a fine film", "dull"], return_tensors="pt", padding=True)
    assert model(**batch).logits.shape == (2, 2)


def test_full_size_random_modernbert_has_the_base_shapes():
    config = models.build_config("modernbert-base-random")
    assert (config.hidden_size, config.num_hidden_layers) == (768, 22)


def test_param_count_on_the_meta_device_matches_the_loaded_model():
    # Reference: the real MiniLM classifier, loaded with its weights and counted tensor by tensor.
    assert models.param_count("minilm") == models.n_params(models.load_model("minilm"))
    assert models.param_count("modernbert-base") == models.param_count("modernbert-base-random")


def test_non_embedding_count_leaves_out_exactly_the_embedding_tables():
    # Reference: a BERT's embedding tables from its config (words, positions, token types, each x hidden size).
    model = models.load_model("tiny-bert")
    c = model.config
    tables = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * c.hidden_size
    assert models.n_params_non_embedding(model) == models.n_params(model) - tables
