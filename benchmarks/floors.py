"""Do the declared floors work? All 8 student notebooks, run on the lowest supported torch, transformers and peft,
installed the way a student's notebook installs them over an older platform stack.

1. A fresh venv gets a platform stack as a Kaggle image has one, older than lab's floors where a platform can be:
   torch at lab's floor (the PyPI CUDA build; no GPU is needed for the smoke profile), transformers 4.57.1 and
   peft 0.17.1 (the versions the issue found on such a stack), and ipykernel.
2. Each notebook's own install cell then runs, with this checkout's wheel in place of the git URL and a pip
   constraint (PIP_CONSTRAINT) that holds torch, transformers and peft at pyproject.toml's floors: what pip picks
   is the lowest supported version of each, everything else as pip resolves it.
3. The 8 notebooks run in page order on the smoke profile in one working folder (as a student's session would),
   each cell in order; a notebook passes when every cell runs.

    nice -n 10 python benchmarks/floors.py              # downloads the CUDA torch (~3 GB); 15-30 min on 2 cores
    python benchmarks/floors.py --transformers 5.1.0    # try another version (to find a floor)

Writes benchmarks/results/floors.json (per notebook pass/fail, seconds, the failing cell and error; the versions
installed; date; machine) and floors.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout without installing
from lab.__main__ import site_pages  # noqa: E402
from lab.site import student_run, write_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
FLOORED = ("torch", "transformers", "peft")
# An older platform stack, as on Kaggle before an update (the issue's: transformers 4.57.1, peft 0.17.1).
PLATFORM = {"transformers": "4.57.1", "peft": "0.17.1", "ipykernel": None}
REPORTED = ("ecbs5200-lab", *FLOORED, "onnxruntime-gpu", "onnxruntime", "onnx", "accelerate", "safetensors",
            "numpy", "ipykernel")


def floors(root: Path = ROOT) -> dict[str, str]:
    """{'torch': '2.6', ...}: the `>=` bound of each floored dependency in pyproject.toml."""
    from packaging.requirements import Requirement
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {}
    for line in deps:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        if req.name in FLOORED and lows:
            found[req.name] = lows[0]
    missing = sorted(set(FLOORED) - set(found))
    if missing:
        raise SystemExit(f"pyproject.toml declares no `>=` floor for {missing}; add one (e.g. \"torch>=2.6\")")
    return found


def exact(version: str) -> str:
    """'2.6' -> '2.6.0': the release a `>=2.6` floor admits first."""
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                         check=True).stdout
    versions = {p["name"].lower(): p["version"] for p in json.loads(out)}
    return {name: versions[name] for name in REPORTED if name in versions}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in FLOORED:
        ap.add_argument(f"--{name}", help=f"the {name} version to hold (default: pyproject.toml's floor)")
    ap.add_argument("--work", help="working folder (default: a new temp folder; needs ~8 GB)")
    ap.add_argument("--out", default=str(RESULTS / "floors.json"))
    args = ap.parse_args(argv)

    when = student_run.started(ROOT)
    declared = floors()
    held = {name: getattr(args, name) or exact(declared[name]) for name in FLOORED}
    work = Path(args.work or tempfile.mkdtemp(prefix="lab-floors-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"[floors] holding {held} in {work}", flush=True)

    python = work / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    pip(python, f"torch=={held['torch']}", *(f"{n}=={v}" if v else n for n, v in PLATFORM.items()))
    platform = installed(python)
    print(f"[floors] platform stack: {platform}", flush=True)

    wheel = student_run.build_wheel(ROOT, work / "wheel")
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in held.items()))
    pages = site_pages(ROOT)
    notebooks = write_notebooks(pages, ROOT, work / "notebooks", install_source=str(wheel))

    folder, tmp = work / "session", work / "tmp"
    folder.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    kernel_env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTHONPATH", "VIRTUAL_ENV",
                                                                           "PIP_CONSTRAINT", "QUARTO_"))}
    kernel_env.update(LAB_PROFILE="smoke", TMPDIR=str(tmp), PIP_CONSTRAINT=str(constraints),
                      PYTHONDONTWRITEBYTECODE="1")
    rows = student_run.run_in_turn(notebooks, python, folder, kernel_env, "floors", timeout=1800)

    record = {
        "what": "all student notebooks on the smoke profile, on the lowest supported torch, transformers and peft",
        "declared_floors": declared, "held": held, "platform_before_install": platform,
        "installed_after": installed(python), "notebooks": rows,
        "passed": sum(r["result"] == "pass" for r in rows), "total": len(rows), **when,
        "python": subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True).stdout.strip(),
        "command": "python benchmarks/floors.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    student_run.save(record, Path(args.out), markdown(record))
    print(f"[floors] {record['passed']}/{record['total']} notebooks pass -> {args.out}")
    return 0 if record["passed"] == record["total"] else 1


def markdown(record: dict) -> str:
    lines = [f"# Floors check: {record['passed']}/{record['total']} student notebooks pass", "",
             f"{record['date']}, {record['machine']}, Python {record['python']}, lab at "
             f"{record['lab_commit'].get('commit')}{' (dirty)' if record['lab_commit'].get('dirty') else ''}.", "",
             f"Declared floors (pyproject.toml): {', '.join(f'{k}>={v}' for k, v in record['declared_floors'].items())}."
             f" Held at: {', '.join(f'{k}=={v}' for k, v in record['held'].items())}.", "",
             "Platform stack before the notebooks' install cell: "
             + ", ".join(f"{k} {v}" for k, v in record["platform_before_install"].items()) + ".", "",
             "Installed after it: " + ", ".join(f"{k} {v}" for k, v in record["installed_after"].items()) + ".", "",
             "| notebook | result | seconds | failing cell |", "|---|---|---|---|"]
    for row in record["notebooks"]:
        failing = f"{row['cell']}: {row['error'].strip().splitlines()[-1][:120]}" if row["result"] == "fail" else ""
        lines.append(f"| {row['notebook']} | {row['result']} | {row.get('seconds', '')} | {failing} |")
    return "\n".join(lines + ["", f"Command: `{record['command']}`", ""])


if __name__ == "__main__":
    sys.exit(main())
