"""The student notebook's install and version cells say what is wrong and what to do, and keep onnxruntime's
telemetry off. Each cell runs in a fresh interpreter against stand-in packages (no GPU, no network)."""
import subprocess
import sys
from pathlib import Path

from lab.site.notebooks import ENVIRONMENT_CODE, TORCH_CHECK, install_code, torch_floor

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, path: Path) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": f"{path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def _package(path: Path, name: str, body: str) -> None:
    (path / name).mkdir(parents=True)
    (path / name / "__init__.py").write_text(body)


def test_the_version_cell_reports_a_broken_import_as_a_failure_and_a_missing_one_as_missing(tmp_path):
    _package(tmp_path, "peft", "raise ImportError(\"cannot import name 'HybridCache' from 'transformers'\")\n")
    _package(tmp_path, "transformers", "import not_a_module_anywhere\n")
    _package(tmp_path, "torch", "__version__ = '2.6.0'\nraise ModuleNotFoundError(\"No module named 'torch'\", "
                                "name='torch')\n")      # stands in for "not installed"
    out = _run(ENVIRONMENT_CODE, tmp_path)
    assert "peft FAILED to import: ImportError: cannot import name 'HybridCache'" in out
    assert "transformers FAILED to import: ModuleNotFoundError" in out    # a dependency missing is a failure
    assert "torch not installed" in out


def test_the_version_cell_turns_telemetry_off_before_onnxruntime_is_imported(tmp_path):
    _package(tmp_path, "onnxruntime", "import os\n__version__ = '1.20.0'\n"
                                      "print('telemetry at import:', os.environ.get('ORT_DISABLE_TELEMETRY'))\n"
                                      "def get_available_providers():\n    return ['CPUExecutionProvider']\n")
    _package(tmp_path, "torch", "__version__ = '2.6.0'\nclass cuda:\n    @staticmethod\n"
                                "    def is_available():\n        return False\n")
    out = _run(ENVIRONMENT_CODE, tmp_path)
    assert "telemetry at import: 1" in out
    assert "GPUs: 0" in out
    assert "onnxruntime providers listed: CPUExecutionProvider" in out
    assert "lab asks onnxruntime for (cpu): CPUExecutionProvider" in out


def _torch_check(platform: str | None, now: str | None, imported: bool = False) -> str:
    code = "\n".join([f"import sys\nTORCH_FLOOR = {torch_floor(ROOT)!r}",
                      f"platform_torch = {platform!r}",
                      f"_installed = lambda name: {now!r}",
                      "_release = lambda v: tuple(int(p) for p in v.split('+')[0].split('.')[:2])",
                      "sys.modules['torch'] = object()" if imported else "", TORCH_CHECK])
    return _run(code, ROOT)


def test_the_install_cell_says_what_to_do_about_a_platform_torch_that_is_too_old():
    assert torch_floor(ROOT) == (2, 7)
    out = _torch_check("2.5.1+cu121", "2.5.1+cu121")
    assert "torch 2.5.1+cu121 is too old" in out and "%pip install 'torch>=2.7'" in out and "restart" in out
    assert "recent enough" in _torch_check("2.8.0+cu126", "2.8.0+cu126")
    replaced = _torch_check("2.5.1+cu121", "2.9.0", imported=True)
    assert "replaced this platform's torch 2.5.1+cu121 with torch 2.9.0" in replaced and "restart it now" in replaced


def test_the_install_cell_is_the_one_place_that_installs_lab():
    cell = install_code("ecbs5200-lab @ git+https://example/course-lab.git", ["scattertext==0.2.2"], (2, 7))
    assert '%pip install -q "ecbs5200-lab @ git+https://example/course-lab.git"' in cell
    assert "TORCH_FLOOR = (2, 7)" in cell
    pages = [*ROOT.glob("*.qmd"), *ROOT.glob("course/*.qmd"), ROOT / "README.md"]
    assert not [p.name for p in pages if "pip install ecbs5200-lab" in p.read_text()]   # a name on no index


def test_the_course_notebooks_install_the_release_tagged_with_the_package_version():
    import tomllib
    from lab.display.report import site_settings
    from lab.site.notebooks import notebook_for, released
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    source = site_settings(ROOT)["notebook-install"]
    assert "@" not in source.rsplit("/", 1)[-1], "_quarto.yml names a ref: the tag is made from pyproject.toml"
    install = notebook_for(ROOT / "course" / "02-lora.qmd", ROOT, source).cells[1].source
    assert f'%pip install -q "{source}@v{version}" {{ort_gpu}}' in install.splitlines()   # a release, not main
    assert released("lab-0.1.0-py3-none-any.whl", ROOT) == "lab-0.1.0-py3-none-any.whl"    # a wheel stays a wheel
    assert released("git+https://example/course-lab.git@v9", ROOT) == "git+https://example/course-lab.git@v9"
