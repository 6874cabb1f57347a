"""The class's own measurements: submissions (lab.record.submission) gathered as untrusted input into the class record
(lab.record.class_record), shown on course/class.qmd (lab.display.class_page), and refused by `lab check` when it holds
a smoke or synthetic submission.

The valid submissions here are made from the course's committed records of week 1 (the cpu profile's recipe, its
real output), so no test runs a recipe. The hostile ones are tiny files, and a sparse one for the size cap.
"""
from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from lab.__main__ import course_files, main
from lab.display import class_page
from lab.record import class_record, records_used, submission
from lab.site.check import check_page, published_problems, record_problems

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>alert(1)</script> [click](https://evil.example) ../../etc/passwd | $x$ @cite"


def committed(week: str) -> list[tuple[str, Path]]:
    """The course's committed records that the week's frozen page showed (course_files, read in the checkout's
    records folder whatever $LAB_RECORDS the test session set)."""
    folder = ROOT / "course" / "measurements"
    return [(name, folder / path.relative_to(path.parents[len(Path(name).parts)])) for name, path in
            course_files(ROOT, week)]


@pytest.fixture(scope="module")
def week1() -> dict:
    """The course's week 1 as a student's submission (the cpu recipe's committed records), alias blue-heron."""
    doc = submission.course_submission("week1", committed("week1"))
    return {**doc, "source": "student", "alias": "blue-heron", "submitted": "2026-12-01T10:00:00+00:00"}


def write(folder: Path, name: str, doc) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def every_string(obj, value):
    """`obj` with every string (not the keys) replaced by `value`."""
    if isinstance(obj, str):
        return value
    if isinstance(obj, dict):
        return {k: every_string(v, value) for k, v in obj.items()}
    if isinstance(obj, list):
        return [every_string(v, value) for v in obj]
    return obj


def hostile_folder(folder: Path, week1: dict) -> dict[str, str]:
    """A folder of one good submission, its resubmission, a good one with markup in its machine's names, and every
    hostile file of issue #30; returns {file name: the word its refusal must hold}."""
    folder.mkdir()
    write(folder, "good.json", week1)
    write(folder, "good-again.json", {**week1, "submitted": "2026-12-02T10:00:00+00:00"})     # the later one
    marked_up = copy.deepcopy(week1)
    marked_up["alias"] = "markup-machine"
    for rec in marked_up["records"]:
        rec["provenance"].update(gpu={"name": HOSTILE}, device="cuda", cpu=HOSTILE, platform=HOSTILE)
        rec["provenance"]["libraries"]["torch"] = HOSTILE
    write(folder, "marked-up.json", marked_up)
    with open(folder / "huge.json", "wb") as f:          # sparse: stat says 5 GB, nothing is stored
        f.truncate(5_000_000_000)
    write(folder, "bomb.json", "[" * 100_000 + "]" * 100_000)
    (folder / "pickle.json").write_bytes(pickle.dumps(week1))
    write(folder, "dotdot.json", every_string(week1, "../../../../tmp/escaped"))
    write(folder, "dotdot-alias.json", {**week1, "alias": "../../../tmp/escaped"})
    write(folder, "script-alias.json", {**week1, "alias": "<script>alert(1)</script>"})
    write(folder, "link-alias.json", {**week1, "alias": "[me](https://evil.example)"})
    nan = json.dumps(week1).replace('"projected_total_s": ', '"projected_total_s": NaN, "was": ', 1)
    write(folder, "nan.json", nan)
    negative = copy.deepcopy(week1)
    negative["records"][0]["result"]["projection"]["projected_total_s"] = -5.0
    write(folder, "negative.json", negative)
    negative_wall = copy.deepcopy(week1)
    negative_wall["records"][1]["wall_s"] = -1
    write(folder, "negative-wall.json", negative_wall)
    write(folder, "future.json", {**week1, "version": submission.VERSION + 1})
    write(folder, "missing.json", {k: v for k, v in week1.items() if k != "records"})
    write(folder, "wrong-type.json", {**week1, "week": 1})
    smoke = copy.deepcopy(week1)
    smoke["records"][0]["config"]["profile"]["name"] = "smoke"
    write(folder, "smoke.json", smoke)
    write(folder, "notes.txt", "not a submission")
    (folder / "link.json").symlink_to(folder / "good.json")     # a link is never followed, even to a good file
    return {"huge.json": "over the cap", "bomb.json": "nests", "pickle.json": "pickle",
            "dotdot.json": "field schema", "dotdot-alias.json": "field alias", "script-alias.json": "field alias",
            "link-alias.json": "field alias", "nan.json": "NaN", "negative.json": "projected_total_s is -5.0",
            "negative-wall.json": "wall_s is -1", "future.json": "newer than this lab reads",
            "missing.json": "field records is missing", "wrong-type.json": "field week is int",
            "smoke.json": "'smoke'", "notes.txt": "not a .json file", "link.json": "a link, never followed"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, week1):
    """The hostile folder gathered by the command, into an output folder beside it; (base, refusals, stdout)."""
    base = tmp_path_factory.mktemp("hostile")
    refusals = hostile_folder(base / "in", week1)
    before = {p for p in base.rglob("*")}
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["class", str(base / "in"), "--out", str(base / "out")]) == 0
    return base, refusals, out.getvalue(), before


def test_each_hostile_file_is_refused_in_one_line_naming_the_file_and_why(hostile):
    base, refusals, stdout, _ = hostile
    refused = [line for line in stdout.splitlines() if line.startswith("  refused: ")]
    assert len(refused) == len(refusals), stdout
    for name, why in refusals.items():
        [line] = [line for line in refused if line.startswith(f"  refused: {name} ")]
        assert why in line, line


def test_the_good_files_are_still_gathered_and_a_resubmission_keeps_the_later(hostile):
    base, _, stdout, _ = hostile
    record = json.loads((base / "out" / class_record.CLASS_FILE).read_text())
    assert sorted(s["alias"] for s in record["submissions"]) == ["blue-heron", "markup-machine"]
    [kept] = [s for s in record["submissions"] if s["alias"] == "blue-heron"]
    assert kept["submitted"] == "2026-12-02T10:00:00+00:00"
    assert "duplicate: good.json is blue-heron's week1 again: kept the later one, good-again.json" in stdout
    assert stdout.rstrip().endswith("2 accepted, 16 refused, 1 duplicate(s) dropped, of 19 file(s)")
    assert not any("good" in json.dumps(r) for r in record["refused"])      # no file name in the record


def test_gathering_writes_the_class_record_and_nothing_else(hostile):
    base, _, _, before = hostile
    assert {p for p in base.rglob("*")} - before == {base / "out", base / "out" / class_record.CLASS_FILE}
    assert not Path("/tmp/escaped").exists()


def test_no_string_of_a_submission_reaches_the_page_as_markup(hostile):
    base, _, _, _ = hostile
    record = json.loads((base / "out" / class_record.CLASS_FILE).read_text())
    assert HOSTILE in json.dumps(record, ensure_ascii=False)        # the record keeps it, as data
    page = "\n\n".join([class_page.overview(record), class_page.machines_table(record),
                        *(class_page.week_markdown(record, w) for w in class_page.WEEK_TITLES),
                        class_page.versions_markdown(record), class_page.gathered_markdown(record)])
    assert "markup" in page and "&lt;script&gt;" in page                      # it is shown, as text
    for raw in ("<script", "](", "[click]", "/tmp/", "$x$", " @cite", "| $"):
        assert raw not in page, raw
    assert published_problems(page) == []                                    # no table lost its columns
    assert class_page.esc("a|b") == "a\\|b" and "<" not in class_page.esc("<b>")   # the control: esc does work


def test_a_submission_names_no_path_or_login_of_the_students_machine(tmp_path, week1, monkeypatch):
    monkeypatch.chdir(tmp_path)
    leaky = copy.deepcopy(week1)
    leaky["records"][0]["result"]["note"] = f"saved in {Path.home()}/x and {tmp_path}/y"
    doc = submission.scrubbed(leaky, submission.private_strings())
    assert doc["records"][0]["result"]["note"] == "saved in <home>/x and <working folder>/y"
    with pytest.raises(ValueError, match="alias"):
        submission.check_alias("Jane Doe")


def test_submit_writes_the_records_the_notebook_showed_under_the_alias(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAB_ALIAS", raising=False)
    monkeypatch.delenv("LAB_SUBMISSIONS", raising=False)
    records_used.forget()
    for name, path in committed("week1"):
        records_used.note(name, path, json.loads(path.read_text()))
    first = submission.submit("week1")
    again = submission.submit("week1")                      # the made-up alias is kept: a resubmission replaces
    records_used.forget()
    assert first == again and first.parent == tmp_path / "lab-output" / "submissions"
    doc = json.loads(first.read_text())
    assert doc["alias"].startswith("student-") and first.name == f"week1-{doc['alias']}.json"
    assert [r["name"] for r in doc["records"]] == ["week1/finetune", "week1/checks"] and doc["marks"] == []
    assert class_record.read_submission(first)["quantities"]["checks_total"] == 3


def test_check_refuses_a_class_page_that_holds_a_smoke_or_synthetic_submission(tmp_path, week1):
    (tmp_path / "_quarto.yml").write_text("project: {type: website}\n")
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "good.json", week1)
    clean, _ = class_record.gather(folder)
    for bad, problem in ((None, None), ({"profiles": ["smoke"]}, "smoke profile"), ({"synthetic": True}, "synthetic")):
        record = copy.deepcopy(clean)
        record["submissions"][0].update(bad or {})       # as a hand-edited or foreign class record could hold
        path = class_record.write(record, tmp_path / "course" / "class")
        records_used.forget()
        class_record.load(path)
        [entry] = records_used.used_records()
        records_used.forget()
        assert entry["file"] == "course/class/class-record.json"
        problems = record_problems(tmp_path, {"records": [entry]})
        if bad is None:
            assert problems == []                          # the control: a clean class record passes
        else:
            assert len(problems) == 1 and problem in problems[0] and "never published" in problems[0]


def test_the_committed_class_record_is_what_the_command_makes_of_the_committed_submissions():
    committed = ROOT / "course" / "class" / class_record.CLASS_FILE
    record, rows = class_record.gather(ROOT / "course" / "class" / "submissions")
    assert json.loads(committed.read_text()) == record
    assert "course" in {s["source"] for s in record["submissions"]}     # the course's own joins, as the course's
    assert all(r.outcome == "accepted" for r in rows)


def test_the_frozen_class_page_shows_every_submission_and_is_fresh():
    record = json.loads((ROOT / "course" / "class" / class_record.CLASS_FILE).read_text())
    html_json = ROOT / "_freeze" / "course" / "class" / "execute-results" / "html.json"
    markdown = json.loads(html_json.read_text())["result"]["markdown"]
    for sub in record["submissions"]:
        assert class_page.who(sub) in markdown and class_page.stack(sub) in markdown
    assert check_page(ROOT, "course/class.qmd") == []
    assert "No submissions have been gathered yet" in class_page.overview(None)   # and with none, one line
