import subprocess

from lab import env


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_dirty_means_code_changed_not_outputs(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "lab.py").write_text("x = 1\n")
    (tmp_path / "_freeze").mkdir()
    (tmp_path / "_freeze" / "page.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    state = env.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "_freeze" / "page.json").write_text('{"re-rendered": true}\n')
    assert env.git_state(tmp_path)["dirty"] is False        # a render's output is not a code change
    (tmp_path / "lab.py").write_text("x = 2\n")
    assert env.git_state(tmp_path)["dirty"] is True


def test_provenance_names_hardware_and_libraries():
    p = env.provenance()
    assert p["device"] == "cpu" and p["cpu_count"] >= 1
    assert p["libraries"]["torch"].startswith("2.13")
    assert "CPUExecutionProvider" in p["ort_providers"]
