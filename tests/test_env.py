import os
import subprocess
import sys

import pytest

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


def _telemetry_store_after(code: str, home) -> bool:
    """Run `code` with a fresh HOME and no ORT_DISABLE_TELEMETRY of ours; did onnxruntime's 1DS telemetry start
    (it creates its device-id store under ~/.cache/Microsoft at import, and looks up its collector's DNS name
    seconds later)?"""
    environ = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    environ.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    subprocess.run([sys.executable, "-c", code], env=environ, check=True, timeout=120)
    return any(home.rglob("onnxruntime.db"))


def test_onnxruntime_telemetry_is_off_wherever_lab_is_imported(tmp_path):
    # The store is written by a thread ORT starts at import: a child that exits at once can beat it (a busy CI run
    # once skipped the control that way), so each child stays up for two seconds.
    stay = "; import time; time.sleep(2)"
    if not _telemetry_store_after("import onnxruntime" + stay, tmp_path / "bare"):       # the control
        pytest.skip("this onnxruntime build has no 1DS telemetry to turn off")
    assert not _telemetry_store_after("from lab import env; env.ort_providers()" + stay, tmp_path / "lab")
