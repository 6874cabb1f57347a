"""Two real submissions of one week, from two library stacks: the course page of what the class measured, from day one.

Week 1's student notebook (the cheapest) runs on the cpu profile, as a student runs it (lab installed from this
checkout's wheel by the notebook's own first cell, an empty working folder, no checkout), twice:

1. `current`: a venv that borrows this checkout's environment (lab.site.student_run.borrowing_venv: torch, transformers
   and peft as `make` installs them);
2. `floors`: the floors check's venv (benchmarks/floors.py: torch 2.7.0, transformers 5.0.0, peft 0.18.0 over an older
   platform stack), given with --floors-venv, with the wheel installed `--no-deps` first and the floors held by a pip
   constraint while the install cell runs.

The notebook's last cell writes its submission (lab.record.submission.submit); each is copied into --out (default
course/class/submissions/) as week1-<alias>.json. Each run is a few minutes of 2 cores.

    python benchmarks/class_submissions.py --floors-venv /tmp/lab-floors-XXXX/venv
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.site import student_run, write_notebooks  # noqa: E402

PAGE = ROOT / "course" / "01-fine-tuning.qmd"
FLOORS = ("torch==2.7.0", "transformers==5.0.0", "peft==0.18.0")


def run(python: Path, wheel: Path, work: Path, alias: str, constraints: Path | None) -> Path:
    """Run week 1's notebook in `python` from an empty folder on the cpu profile; returns its submission."""
    [notebook] = write_notebooks([PAGE], ROOT, work / "nb", install_source=str(wheel))
    folder, tmp = work / "session", work / "tmp"
    folder.mkdir(parents=True)
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTHONPATH", "VIRTUAL_ENV",
                                                                    "PIP_CONSTRAINT", "QUARTO_"))}
    env.update(LAB_PROFILE="cpu", LAB_ALIAS=alias, TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    if constraints is not None:
        env["PIP_CONSTRAINT"] = str(constraints)
    seconds = student_run.run_notebook(notebook, python, folder, env, timeout=3600)
    [submission] = (folder / "lab-output" / "submissions").glob(f"week1-{alias}.json")
    print(f"[class] {alias}: week 1 on cpu in {seconds:.0f} s -> {submission.name}", flush=True)
    return submission


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floors-venv", required=True, help="the floors check's venv (benchmarks/floors.py --work)")
    ap.add_argument("--out", default=str(ROOT / "course" / "class" / "submissions"))
    ap.add_argument("--only", choices=("current", "floors"), help="run one of the two")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lab-class-"))
    wheel = student_run.build_wheel(ROOT, work / "wheel")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "current"):
        python, _ = student_run.borrowing_venv(work / "current")
        shutil.copy(run(python, wheel, work / "current", "stack-current", None), out)
    if args.only in (None, "floors"):
        python = Path(args.floors_venv) / "bin" / "python"
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                       check=True)
        constraints = work / "floors-constraints.txt"
        constraints.write_text("".join(f"{req}\n" for req in FLOORS))
        shutil.copy(run(python, wheel, work / "floors", "stack-floors", constraints), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
