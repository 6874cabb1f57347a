"""Does Hugging Face optimum export and quantize the course's model here, offline? (issue #29, item 2)

The origin story says optimum crashed, and the course built its own export (lab.quantize). This tries optimum on
the packaged MiniLM (lab.models.minilm_path(), with a seeded classifier head saved beside it) without the hub, in
throwaway virtual environments under a temporary folder: optimum is not a dependency of the course and never
becomes one. Each environment sees the project's own packages through a .pth file (so torch is not downloaded
again) and installs only its own packages on top, which shadow the project's; the project's .venv is never touched.

    python benchmarks/optimum_offline.py    # ~3 min; downloads optimum and optimum-onnx (setup 3 also transformers
                                            # 4.57, tokenizers, huggingface_hub, onnxruntime: ~60 MB); then deleted

The setups:
  optimum-alone     `optimum` (newest), no extras: does it still carry an ONNX exporter?
  forced-no-deps    `optimum` and `optimum-onnx` (newest) with --no-deps, then requests: on the course's own stack
                    (transformers 5, onnxruntime 1.31), against optimum-onnx's declared transformers pin.
  resolved          `optimum[onnxruntime]` as pip resolves it: what it installs in place of the course's stack.
  pinned-transformers  `optimum[onnxruntime]` with the course's transformers pinned: the optimum pip backtracks to.
In each: import, export (optimum.exporters.onnx.main_export, task text-classification), dynamic int8 quantization
(ORTQuantizer with AutoQuantizationConfig.avx512_vnni, per tensor), and both ONNX files run with
ORTModelForSequenceClassification on eight test snippets, logits against PyTorch fp32 (the course's stack). A step
that raises is recorded with its error's type and first line (and the innermost error it wraps), and the steps
that need its output are skipped.
Before the setups, `pip install --dry-run "optimum[onnxruntime]" transformers==<the course's>` records whether
pip can put optimum's ONNX Runtime extra beside the course's transformers at all.

Writes benchmarks/results/optimum.json, and benchmarks/results/optimum.md, the dated note made from it (`note`;
tests/test_int8_pipeline_optimum.py holds the two to each other).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "optimum.json"
NOTE = RESULTS.with_suffix(".md")
# Each setup: its pip installs in order, (packages, --no-deps or not). OURS: the course's transformers pin.
OURS = "transformers==<the course's>"
SETUPS = {
    "optimum-alone": [(["optimum"], True)],
    "forced-no-deps": [(["optimum", "optimum-onnx"], True), (["requests"], False)],   # requests: optimum's import
    "resolved": [(["optimum[onnxruntime]"], False)],
    "pinned-transformers": [(["optimum[onnxruntime]", OURS], False)],
}
PACKAGES = ("optimum", "optimum-onnx", "transformers", "tokenizers", "huggingface-hub", "torch", "onnx",
            "onnxruntime", "onnxruntime-gpu")
N_SNIPPETS = 8


def versions() -> dict:
    import importlib.metadata as md
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def root_cause(e: BaseException) -> BaseException:
    """The innermost exception: transformers' lazy imports wrap the ImportError that says what is missing."""
    while e.__cause__ is not None or (e.__context__ is not None and not e.__suppress_context__):
        e = e.__cause__ or e.__context__
    return e


# ---------------------------------------------------------------- inside a throwaway environment

def child(work: Path) -> dict:
    """The steps, in the environment this interpreter runs in; reads what `prepare` saved under `work`."""
    import numpy as np
    steps: list[dict] = []

    def step(name, fn, *needs):
        blocked = [n for n in needs if not any(s["step"] == n and s["status"] == "ok" for s in steps)]
        if blocked:
            steps.append({"step": name, "status": "skipped", "reason": f"needs {', '.join(blocked)}"})
            return
        start = time.perf_counter()
        try:
            numbers = fn() or {}
            steps.append({"step": name, "status": "ok", "reason": "", **numbers})
        except Exception as e:  # the finding is the error itself
            cause = root_cause(e)
            where = traceback.extract_tb(cause.__traceback__)[-1]
            steps.append({"step": name, "status": "failed", "reason": first_line(e),
                          "cause": first_line(cause) if cause is not e else "",
                          "where": f"{Path(where.filename).name}:{where.lineno}"})
        steps[-1]["seconds"] = round(time.perf_counter() - start, 1)

    def import_exporter():
        from optimum.exporters.onnx import main_export  # noqa: F401

    def import_runtime():
        from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer  # noqa: F401

    def export():
        from optimum.exporters.onnx import main_export
        main_export(str(work / "classifier"), output=work / "onnx", task="text-classification")
        return {"files": sorted(p.name for p in (work / "onnx").iterdir())}

    def quantize():
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
        config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
        ORTQuantizer.from_pretrained(work / "onnx").quantize(save_dir=work / "int8", quantization_config=config)
        return {"files": sorted(p.name for p in (work / "int8").iterdir())}

    def run(sub):
        def go():
            import torch
            from optimum.onnxruntime import ORTModelForSequenceClassification
            batch = np.load(work / "batch.npz")
            model = ORTModelForSequenceClassification.from_pretrained(work / sub)
            feeds = {k: torch.from_numpy(batch[k]) for k in ("input_ids", "attention_mask")}
            logits = model(**feeds).logits.detach().numpy()
            ref = batch["reference"]
            return {"max_abs_diff": float(np.abs(logits - ref).max()), "max_abs_logit": float(np.abs(ref).max()),
                    "same_predictions": int((logits.argmax(1) == ref.argmax(1)).sum()), "n": len(ref)}
        return go

    step("import optimum.exporters.onnx", import_exporter)
    step("import optimum.onnxruntime", import_runtime)
    step("export", export, "import optimum.exporters.onnx")
    step("quantize int8", quantize, "export", "import optimum.onnxruntime")
    step("run fp32 ONNX", run("onnx"), "export", "import optimum.onnxruntime")
    step("run int8 ONNX", run("int8"), "quantize int8")
    return {"versions": versions(), "steps": steps}


# ---------------------------------------------------------------- from the course's environment

def prepare(work: Path) -> None:
    """The packaged MiniLM with a seeded two-class head, saved as a folder; a fixed batch and its fp32 logits."""
    import numpy as np
    import torch
    sys.path.insert(0, str(ROOT))
    from lab import config, data, models
    profile = config.PROFILES["cpu"]
    model, tokenizer = models.load("minilm", seed=profile.seed)
    model.eval().save_pretrained(work / "classifier")
    tokenizer.save_pretrained(work / "classifier")
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batch = data.sample_batches(enc, (N_SNIPPETS,), seed=profile.seed)[N_SNIPPETS]
    with torch.inference_mode():
        reference = model(**batch).logits.numpy()
    np.savez(work / "batch.npz", input_ids=batch["input_ids"].numpy(), attention_mask=batch["attention_mask"].numpy(),
             reference=reference)


def pip(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)


def pip_lines(text: str) -> list[str]:
    """pip's output without the index-location chatter."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]


def resolver_verdict() -> dict:
    """Can pip install optimum's ONNX Runtime extra beside the course's transformers?"""
    import transformers
    p = pip("install", "--dry-run", "optimum[onnxruntime]", f"transformers=={transformers.__version__}")
    lines = pip_lines(p.stdout + p.stderr)
    caused = [ln.strip() for ln in lines if "depends on transformers" in ln]
    would = next((ln for ln in lines if ln.startswith("Would install")), "")
    chosen = re.search(r"\boptimum-(\d[\w.]*)", would)
    return {"requested": ["optimum[onnxruntime]", f"transformers=={transformers.__version__}"],
            "resolves": p.returncode == 0, "optimum_chosen": chosen.group(1) if chosen else None,
            "conflicts": caused, "would_install": would,
            "error": next((ln for ln in lines if ln.startswith("ERROR")), "")}


def setup(name: str, work: Path, base: Path) -> dict:
    """One throwaway environment: create, install, run the steps in it."""
    venv = base / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")][0]
    Path(site, "course-packages.pth").write_text(ours + "\n")   # after the venv's own: its installs shadow ours
    row = {"setup": name, "installs": []}
    import transformers
    for packages, no_deps in SETUPS[name]:
        packages = [f"transformers=={transformers.__version__}" if x == OURS else x for x in packages]
        p = pip("--python", str(python), "install", *(["--no-deps"] if no_deps else []), *packages)
        lines = pip_lines(p.stdout + p.stderr)
        row["installs"].append({
            "pip_install": packages, "no_deps": no_deps, "ok": p.returncode == 0,
            "installed_line": next((ln for ln in lines if ln.startswith("Successfully installed")), ""),
            "pip_conflicts": [ln.strip() for ln in lines if "requires" in ln and "incompatible" in ln]})
        if p.returncode != 0:
            return {**row, "error": "\n".join(lines[-5:])}
    out = work / name
    out.mkdir()
    for f in ("classifier", "batch.npz"):
        os.symlink(work / f, out / f)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    c = subprocess.run([str(python), __file__, "--child", str(out)], capture_output=True, text=True, env=env,
                       timeout=900)
    try:
        result = json.loads(c.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {**row, "error": f"the child exited {c.returncode}: " + " | ".join(c.stderr.strip().splitlines()[-3:])}
    return {**row, **result}


def outcome(setup: dict) -> str:
    """One setup in words: what pip installed, then how far the steps got, with the first error."""
    if setup.get("error"):
        return f"did not install or run: {setup['error']}"
    v = setup["versions"]
    stack = ", ".join(f"{k} {v[k]}" for k in ("optimum", "optimum-onnx", "transformers", "onnxruntime") if v.get(k))
    conflicts = [c.rstrip(".") for i in setup["installs"] for c in i["pip_conflicts"]]
    if conflicts:
        stack += f" (pip: {'; '.join(conflicts)})"
    failed = [st for st in setup["steps"] if st["status"] == "failed"]
    if not failed:
        run = next(st for st in setup["steps"] if st["step"] == "run int8 ONNX")
        return (f"{stack}: every step ran (export, int8 quantization, both models run); int8 logits within "
                f"{run['max_abs_diff']:.2g} of PyTorch fp32 (largest fp32 logit {run['max_abs_logit']:.2g}), "
                f"{run['same_predictions']} of {run['n']} predictions the same")
    first = failed[0]
    reason = re.sub(r" \(/[^)]*\)", "", first.get("cause") or first["reason"])     # no local paths in the note
    return f"{stack}: {first['step']} fails with `{reason}`, and nothing that needs it runs"


def note(results: dict) -> str:
    """The dated Markdown note of a results file: the resolver's verdict and each setup's outcome."""
    r = results["resolver"]
    ours = results["course_stack"]["transformers"]
    lines = [f"# optimum, offline, on the packaged MiniLM ({results['date']})", "",
             f"Made by `python benchmarks/optimum_offline.py` from `optimum.json`; the course's stack: transformers "
             f"{ours}, torch {results['course_stack']['torch']}. optimum is not a dependency of the course.", "",
             f"- pip, asked for `optimum[onnxruntime]` beside transformers {ours}: "
             + (f"resolves only by falling back to optimum {r['optimum_chosen']}." if r["resolves"]
                else f"cannot resolve it ({'; '.join(r['conflicts']) or r['error']}).")]
    for setup in results["setups"]:
        lines.append(f"- `{setup['setup']}`: {outcome(setup)}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="optimum-") as tmp:
        work, base = Path(tmp) / "work", Path(tmp) / "venvs"
        work.mkdir()
        base.mkdir()
        prepare(work)
        out = {"date": dt.date.today().isoformat(), "python": sys.version.split()[0], "course_stack": versions(),
               "model": "minilm (the packaged all-MiniLM-L6-v2, a seeded two-class head)",
               "resolver": resolver_verdict(), "setups": []}
        for name in SETUPS:
            print(f"[optimum] {name} ...", flush=True)
            out["setups"].append(setup(name, work, base))
            last = out["setups"][-1]
            said = [f"{s['step']} {s['status']}" + (f" ({s.get('cause') or s['reason']})" if s["reason"] else "")
                    for s in last.get("steps", [])]
            print(f"[optimum] {name}: " + "; ".join(said) + (last.get("error") or ""), flush=True)
    out["seconds"] = round(time.perf_counter() - started)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    NOTE.write_text(note(out))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {NOTE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
