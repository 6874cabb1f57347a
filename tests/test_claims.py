"""lab.display.claims: in a site render a broken claim stops it with its message and numbers (smoke runs only warn, by
design); in a student's notebook it prints the course's numbers next to the student's and the notebook goes on."""
import pytest

from lab.display import claims, student
from lab.display.claims import ClaimError


@pytest.fixture
def site_render(monkeypatch):
    for name in claims.SITE_RENDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(claims.STRICT_ENV, raising=False)
    monkeypatch.setenv("LAB_PROFILE", "cpu")
    monkeypatch.setenv("LAB_PAGE", "course/04-quantization.qmd")
    monkeypatch.setattr(student, "_checked", {})


@pytest.fixture
def student_notebook(monkeypatch):
    for name in claims.SITE_RENDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAB_PROFILE", "cpu")
    monkeypatch.setattr(student, "_course", {"hardware": None, "claims": {}})
    monkeypatch.setattr(student, "machine", lambda: "GPU: Tesla T4 (x2)")


def test_a_holding_claim_passes(site_render):
    assert claims.expect(4.1 >= 3.5, "int8 is at least 3.5x smaller", ratio=4.1) is True


def test_a_broken_claim_stops_the_render_naming_page_claim_and_numbers(site_render):
    with pytest.raises(ClaimError) as err:
        claims.expect(2.9 >= 3.5, "int8 is at least 3.5x smaller", ratio=2.9, fp32_mb=90.9)
    message = str(err.value)
    assert "course/04-quantization.qmd" in message
    assert "'int8 is at least 3.5x smaller'" in message
    assert "ratio=2.9" in message and "fp32_mb=90.9" in message


@pytest.mark.parametrize("variable", ["QUARTO_DOCUMENT_PATH", "QUARTO_PROJECT_ROOT", "QUARTO_FIG_FORMAT"])
def test_a_broken_claim_stops_a_real_quarto_render_too(site_render, monkeypatch, variable):
    monkeypatch.delenv("LAB_PAGE")
    monkeypatch.setenv(variable, "/site/course")
    with pytest.raises(ClaimError):
        claims.expect(False, "int8 is faster", speedup=0.5)


def test_a_broken_claim_under_smoke_is_a_visible_warning(site_render, monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    with pytest.warns(UserWarning, match="smoke profile, not enforced.*speedup=0.5"):
        assert claims.expect(False, "int8 is faster", speedup=0.5) is False


def test_one_claim_or_all_can_be_enforced_under_smoke(site_render, monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", "smoke")
    monkeypatch.setenv(claims.STRICT_ENV, "int8 is faster")
    with pytest.raises(ClaimError):
        claims.expect(False, "int8 is faster", speedup=0.5)
    with pytest.warns(UserWarning):
        assert claims.expect(False, "int8 is smaller", ratio=0.5) is False
    monkeypatch.setenv(claims.STRICT_ENV, "all")
    with pytest.raises(ClaimError):
        claims.expect(False, "int8 is smaller", ratio=0.5)


def test_the_site_render_records_every_claim_with_its_numbers_and_machine(site_render, monkeypatch):
    monkeypatch.setattr(student, "machine", lambda: "CPU: Intel Xeon (2 cores)")
    claims.expect(True, "int8 is at least 3.5x smaller", ratio=4.123456)
    with pytest.raises(ClaimError):
        claims.expect(False, "int8 is faster", speedup=0.5, rows=list(range(100)))
    record = student.course_record()
    assert record["hardware"] == "CPU: Intel Xeon (2 cores)"
    assert record["claims"]["int8 is at least 3.5x smaller"] == {"ratio": "4.123"}
    assert record["claims"]["int8 is faster"]["speedup"] == "0.5"
    assert len(record["claims"]["int8 is faster"]["rows"]) <= 80          # long values are cut short


def test_in_a_student_notebook_a_broken_claim_prints_course_and_student_side_by_side(student_notebook, capsys):
    student.use_course({"hardware": "CPU: Intel Xeon (2 cores)",
                        "claims": {"int8 is faster": {"speedup": "2.08"}}})
    assert claims.expect(0.93 > 1, "int8 is faster", speedup=0.93) is False      # no exception: it goes on
    out = capsys.readouterr().out
    assert "'int8 is faster'" in out and "does not hold" in out
    assert "the course measured" in out and "you measured" in out
    speedup = next(line for line in out.splitlines() if line.strip().startswith("speedup"))
    assert speedup.split() == ["speedup", "2.08", "0.93"]
    machine = next(line for line in out.splitlines() if line.strip().startswith("machine"))
    assert "Intel Xeon" in machine and "Tesla T4" in machine
    assert "another GPU or CPU" in out and "finding" in out


def test_in_a_student_notebook_a_claim_the_course_did_not_record_still_shows_the_students_numbers(
        student_notebook, capsys):
    assert claims.expect(False, "MiniLM passes every check", failed=["reload"]) is False
    out = capsys.readouterr().out
    assert "not in this notebook" in out and "['reload']" in out


def test_in_a_student_notebook_a_holding_claim_prints_nothing(student_notebook, capsys):
    assert claims.expect(True, "int8 is faster", speedup=2.0) is True
    assert capsys.readouterr().out == ""
