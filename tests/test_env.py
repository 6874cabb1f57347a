import os
import subprocess
import sys
import time

import pytest

from lab.record import env


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


def _telemetry_store_after(code: str, home, stay_s: float) -> float | None:
    """Run `code` with a fresh HOME and no ORT_DISABLE_TELEMETRY of ours, and keep the child up to `stay_s` seconds:
    did onnxruntime's 1DS telemetry start? It creates its device-id store under ~/.cache/Microsoft from a thread it
    starts at import (and looks up its collector's DNS name seconds later). Returns the seconds the store took to
    appear, or None."""
    environ = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    environ.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    watch = (f"; import pathlib, time; t = time.monotonic()\n"
             f"while time.monotonic() - t < {stay_s} and not any(pathlib.Path({str(home)!r}).rglob('onnxruntime.db')):"
             f" time.sleep(0.05)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code + watch], env=environ, check=True, timeout=120)
    return time.monotonic() - started if any(home.rglob("onnxruntime.db")) else None


def test_onnxruntime_telemetry_is_off_wherever_lab_is_imported(tmp_path):
    # The store is written by a thread ORT starts at import: a child that exits at once can beat it, and on a busy
    # machine the thread may start late. So the control child waits up to 30 s for the store, and the child that
    # imports lab stays up three times as long as the control needed (at least 2 s).
    took = _telemetry_store_after("import onnxruntime", tmp_path / "bare", stay_s=30)   # the control
    if took is None:
        pytest.skip("this onnxruntime build has no 1DS telemetry to turn off")
    assert _telemetry_store_after("from lab.record import env; env.ort_providers()", tmp_path / "lab",
                                  stay_s=max(2.0, 3 * took)) is None
