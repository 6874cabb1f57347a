"""Do the T4 course's notebooks run where a student runs them? Week 1 and week 4's student notebooks on the
full-size rehearsal (random-init ModernBERT-base, 149M parameters: lab.config.REHEARSAL), lab installed from this
checkout's wheel by each notebook's own first cell, from an empty folder with no checkout.

Week 1 fine-tunes ModernBERT and checks its checkpoints; week 4 exports it to ONNX, quantizes it to int8 and times
every route: the two notebooks where ModernBERT's size and architecture meet code that MiniLM never exercised.
CI runs the same two notebooks at the tiny ModernBERT's size (tests/test_student_notebooks.py).

    python benchmarks/rehearsal_notebooks.py                 # ~20-30 min on 2 idle cores
    python benchmarks/rehearsal_notebooks.py --profile rehearsal-smoke --pages course/01-fine-tuning.qmd

Writes benchmarks/results/rehearsal_notebooks.json (per notebook pass/fail, seconds, the failing cell and error;
machine, load, lab commit) and .md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout without installing
from lab.site import student_run, write_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PAGES = ("course/01-fine-tuning.qmd", "course/04-quantization.qmd")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="rehearsal")
    ap.add_argument("--pages", nargs="+", default=list(PAGES))
    ap.add_argument("--out", default=str(RESULTS / "rehearsal_notebooks.json"))
    args = ap.parse_args(argv)

    when = student_run.started(ROOT)
    work = Path(tempfile.mkdtemp(prefix="lab-rehearsal-nb-"))
    wheel = student_run.build_wheel(ROOT, work / "wheel")
    python, _ = student_run.borrowing_venv(work)
    notebooks = write_notebooks([ROOT / p for p in args.pages], ROOT, work / "notebooks", install_source=str(wheel))
    folder, tmp = work / "session", work / "tmp"      # one working folder, as one student session would have
    folder.mkdir()
    tmp.mkdir()
    kernel_env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTHONPATH", "VIRTUAL_ENV",
                                                                           "QUARTO_"))}
    kernel_env.update(LAB_PROFILE=args.profile, TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    rows = student_run.run_in_turn(notebooks, python, folder, kernel_env, "rehearsal-notebooks", timeout=3600)

    record = {
        "what": f"the student notebooks of {', '.join(args.pages)} on the {args.profile!r} profile, lab from the "
                "wheel, no checkout",
        "profile": args.profile, "notebooks": rows,
        "passed": sum(r["result"] == "pass" for r in rows), "total": len(rows), **when,
        "command": "python benchmarks/rehearsal_notebooks.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    student_run.save(record, Path(args.out), markdown(record))
    print(f"[rehearsal-notebooks] {record['passed']}/{record['total']} pass -> {args.out}")
    return 0 if record["passed"] == record["total"] else 1


def markdown(record: dict) -> str:
    commit = record["lab_commit"]
    lines = [f"# Rehearsal notebooks: {record['passed']}/{record['total']} pass on `{record['profile']}`", "",
             f"{record['date']}, {record['machine']}, lab at {commit.get('commit')}"
             f"{' (dirty)' if commit.get('dirty') else ''}. {record['what']}.", "",
             "| notebook | result | seconds | load before, after | failing cell |", "|---|---|---|---|---|"]
    for row in record["notebooks"]:
        failing = f"{row['cell']}: {row['error'].strip().splitlines()[-1][:120]}" if row["result"] == "fail" else ""
        lines.append(f"| {row['notebook']} | {row['result']} | {row.get('seconds', '')} | "
                     f"{row['load_before']}, {row['load_after']} | {failing} |")
    return "\n".join(lines + ["", f"Command: `{record['command']}`", ""])


if __name__ == "__main__":
    sys.exit(main())
