"""Shared test set-up: never write into the committed record or runs, never wait on the hub."""
import os

import pytest

# Tests must not touch course/measurements: every record goes to a per-session temp folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _records_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LAB_RECORDS", str(tmp_path_factory.getbasetemp() / "records"))
    # Runs too: two test sessions on one machine (one user, two checkouts) must not share a run folder.
    monkeypatch.setenv("LAB_RUNS", str(tmp_path_factory.getbasetemp() / "runs"))
