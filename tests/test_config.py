import pytest

from lab.config import PROFILES, get_profile


def test_profiles_are_smoke_cpu_gpu():
    assert list(PROFILES) == ["smoke", "cpu", "gpu"]


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
