import pytest

from lab import distill, lora
from lab.record import paths
from lab.config import GPU, PROFILES, UNPUBLISHABLE, get_profile, recipe


def test_profiles_are_smoke_cpu_gpu_and_the_two_rehearsals():
    assert list(PROFILES) == ["smoke", "cpu", "gpu", "rehearsal", "rehearsal-smoke"]


def test_the_rehearsals_run_modernbert_with_the_gpu_profiles_recipe():
    for name in ("rehearsal", "rehearsal-smoke"):
        p = PROFILES[name]
        assert recipe(p) == "gpu" and p.lr == GPU.lr and p.warmup_ratio == GPU.warmup_ratio
        assert lora.settings_for(p) == lora.settings_for(GPU)
        assert distill.student_key(p) == distill.student_key(GPU)
    assert PROFILES["rehearsal"].model == "modernbert-base-random"
    assert PROFILES["rehearsal-smoke"].model == "tiny-modernbert"
    assert recipe(PROFILES["cpu"]) == "cpu"


def test_only_smoke_and_the_rehearsals_are_unpublishable_and_they_write_to_temp(monkeypatch):
    monkeypatch.delenv("LAB_RECORDS", raising=False)
    monkeypatch.delenv("LAB_RUNS", raising=False)
    assert UNPUBLISHABLE == {"smoke", "rehearsal", "rehearsal-smoke"}
    for name in UNPUBLISHABLE:
        assert paths.records_dir(name) == paths.smoke_dir("records", name)
        assert paths.runs_dir(name) == paths.smoke_dir("runs", name)
    assert paths.records_dir("rehearsal") != paths.records_dir("smoke")     # two rehearsals never share records
    assert paths.records_dir("cpu") != paths.smoke_dir("records", "cpu")


def test_a_profile_that_follows_none_stores_no_follows_field():
    # records of smoke/cpu/gpu store the profile's dict: adding `follows` must not make them stale
    assert "follows" not in PROFILES["cpu"].to_dict()
    assert PROFILES["rehearsal"].to_dict()["follows"] == "gpu"


def test_lab_profile_overrides_hardware(monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    assert get_profile().name == "smoke"


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "tpu")
    with pytest.raises(ValueError) as e:
        get_profile()
    for name in ("'tpu'", "smoke", "cpu", "gpu"):
        assert name in str(e.value)


def test_hardware_default_without_gpu_is_cpu(monkeypatch):
    import torch
    monkeypatch.delenv("LAB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile().name == "cpu"


def test_but_rejects_unknown_fields():
    assert PROFILES["cpu"].but(epochs=1).epochs == 1
    with pytest.raises(TypeError, match="epoch"):
        PROFILES["cpu"].but(epoch=1)
