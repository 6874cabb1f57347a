"""Where lab writes: the checkout's folders in a checkout, ./lab-output when pip-installed, never site-packages."""
from pathlib import Path

from lab import train
from lab.record import store, paths
from lab.config import CPU, SMOKE


def test_in_a_checkout_records_and_runs_stay_in_the_course_folders(monkeypatch):
    for var in ("LAB_RECORDS", "LAB_RUNS", "LAB_HOME"):
        monkeypatch.delenv(var, raising=False)
    root = Path(__file__).resolve().parent.parent
    assert paths.checkout() == root
    assert store.records_dir("cpu") == root / "course" / "measurements"
    assert train.run_dir(CPU) == root / "runs" / "cpu-minilm"


def test_installed_lab_writes_to_a_working_folder_in_the_current_directory(monkeypatch, tmp_path):
    # What a pip-installed lab sees: no _quarto.yml beside the package (site-packages is no checkout).
    for var in ("LAB_RECORDS", "LAB_RUNS", "LAB_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(paths, "package_parent", lambda: tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert paths.checkout() is None
    assert store.records_dir("cpu") == tmp_path / "lab-output" / "measurements"
    assert train.run_dir(CPU) == tmp_path / "lab-output" / "runs" / "cpu-minilm"


def test_lab_home_moves_the_working_folder_and_smoke_keeps_to_its_own_subfolder(monkeypatch, tmp_path):
    for var in ("LAB_RECORDS", "LAB_RUNS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    assert store.records_dir("cpu") == tmp_path / "home" / "measurements"
    assert train.run_dir(CPU) == tmp_path / "home" / "runs" / "cpu-minilm"
    # smoke never mixes in: its records are keyed by hardware too, so they would replace the course's
    assert store.records_dir("smoke") == tmp_path / "home" / "smoke" / "measurements"
    assert train.run_dir(SMOKE) == tmp_path / "home" / "smoke" / "runs" / "smoke-tiny-bert"
    monkeypatch.delenv("LAB_HOME")
    assert not str(train.run_dir(SMOKE)).startswith(str(tmp_path))       # without LAB_HOME: a temp folder


def test_provenance_names_the_package_version_where_there_is_no_commit(monkeypatch, tmp_path):
    from lab.record import env
    from lab.display import report
    monkeypatch.setattr(paths, "package_parent", lambda: tmp_path)
    prov = env.provenance()
    assert prov["git"] == {"commit": None, "dirty": None}
    assert report.source_label(prov) == f"lab {prov['lab']} (installed)" and prov["lab"] != "unknown"


def test_site_root_is_found_from_a_page_folder_and_not_from_an_empty_one(tmp_path):
    root = Path(__file__).resolve().parent.parent
    assert paths.site_root(root / "course") == root
    assert paths.site_root(tmp_path) is None
