"""lab.claims: a broken claim stops the render with its message and numbers; smoke runs only warn (by design)."""
import pytest

from lab import claims
from lab.claims import ClaimError


@pytest.fixture
def real_profile(monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "cpu")
    monkeypatch.setenv("LAB_PAGE", "course/04-quantization.qmd")


def test_a_holding_claim_passes(real_profile):
    assert claims.expect(4.1 >= 3.5, "int8 is at least 3.5x smaller", ratio=4.1) is True


def test_a_broken_claim_stops_the_render_naming_page_claim_and_numbers(real_profile):
    with pytest.raises(ClaimError) as err:
        claims.expect(2.9 >= 3.5, "int8 is at least 3.5x smaller", ratio=2.9, fp32_mb=90.9)
    message = str(err.value)
    assert "course/04-quantization.qmd" in message
    assert "'int8 is at least 3.5x smaller'" in message
    assert "ratio=2.9" in message and "fp32_mb=90.9" in message


def test_a_broken_claim_under_smoke_is_a_visible_warning(monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    with pytest.warns(UserWarning, match="smoke profile, not enforced.*speedup=0.5"):
        assert claims.expect(False, "int8 is faster", speedup=0.5) is False
