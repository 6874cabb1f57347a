"""The onnxruntime-gpu the install cell picks for each CUDA major is the one benchmarks/ort_gpu_wheels.py proved from
its wheel: its CUDA provider library needs that major's CUDA runtime and cuBLAS (ELF NEEDED), and no other's."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.site.notebooks import ORT_GPU_CHOICE, ORT_GPU_PINS, install_code

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ort_gpu_wheels.json"
sys.path.insert(0, str(ROOT / "benchmarks"))
import ort_gpu_wheels  # noqa: E402


def _cuda_core(names: list[str]) -> list[str]:
    return [n for n in names if re.match(r"lib(cudart|cublas|cublasLt)\.so\.\d+$", n)]


def test_the_install_cell_pins_the_wheels_that_the_results_file_proved():
    results = json.loads(RESULTS.read_text())
    proved = {major: row["pin"] for major, row in results["pins"].items()}
    assert proved == ORT_GPU_PINS, "benchmarks/ort_gpu_wheels.py checked other pins: run it again"
    cell = install_code("ecbs5200-lab", [])
    assert f"ORT_GPU_PINS = {ORT_GPU_PINS!r}" in cell and '"ecbs5200-lab" {ort_gpu}' in cell
    for major, row in results["pins"].items():
        assert row["pass"] is True and f"onnxruntime_gpu-{row['pin']}-" in row["wheel"]
        core = _cuda_core(row["needed"])
        assert {f"libcudart.so.{major}", f"libcublas.so.{major}"} <= set(core), (major, row["needed"])
        assert all(n.endswith(f".so.{major}") for n in core), (major, core)       # no other major's runtime
        assert row["build_cuda_version"].split(".")[0] == major
    # the CUDA 12 pin is the newest CUDA 12 wheel: the release after it needs CUDA 13
    for major, row in results["next_release"].items():
        assert row["needs_another_major"] and f"libcudart.so.{major}" not in row["needed"]


def test_the_verdict_fails_a_wheel_built_for_another_major():
    cuda12 = ["libcublasLt.so.12", "libcublas.so.12", "libcudart.so.12", "libc.so.6"]
    assert ort_gpu_wheels.verdict(cuda12, "12") and not ort_gpu_wheels.verdict(cuda12, "13")
    assert not ort_gpu_wheels.verdict(["libcublas.so.12", "libcudart.so.13"], "12")     # mixed majors


@pytest.mark.skipif(not shutil.which("readelf"), reason="readelf (binutils) is not installed: nothing to compare with")
def test_the_elf_reader_lists_what_readelf_lists():
    lib = Path(sys.executable).resolve()          # a dynamically linked ELF on every Linux this runs on
    names = ort_gpu_wheels.needed(lib.read_bytes())
    assert names and names == ort_gpu_wheels.readelf_needed(lib)


def _choice(tmp_path, cuda: str | None, machine=("Linux", "x86_64")) -> str:
    torch = tmp_path / f"torch-{cuda}" / "torch"
    torch.mkdir(parents=True, exist_ok=True)
    (torch / "__init__.py").write_text(f"class version:\n    cuda = {cuda!r}\n")
    code = "\n".join(["import sys, platform", f"platform.system = lambda: {machine[0]!r}",
                      f"platform.machine = lambda: {machine[1]!r}", f"ORT_GPU_PINS = {ORT_GPU_PINS!r}",
                      ORT_GPU_CHOICE, "print('CHOSEN', repr(ort_gpu))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(torch.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_install_cell_picks_onnxruntime_gpu_by_the_cuda_major_of_the_platform_torch(tmp_path):
    assert "CHOSEN 'onnxruntime-gpu==1.26.0'" in _choice(tmp_path, "12.4")      # Kaggle's and Colab's torch
    assert f"CHOSEN 'onnxruntime-gpu=={ORT_GPU_PINS['13']}'" in _choice(tmp_path, "13.0")
    assert "CHOSEN ''" in _choice(tmp_path, None)                               # a CPU torch: no pin
    assert "CHOSEN ''" in _choice(tmp_path, "12.4", ("Darwin", "arm64"))       # no onnxruntime-gpu wheel there
    other = _choice(tmp_path, "11.8")
    assert "CHOSEN ''" in other and "pins onnxruntime-gpu for CUDA 12, 13 only" in other
