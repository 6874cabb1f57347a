"""The teachability scorecard: can a semester be built on this model? Eight checks, each reusing a week's module.

    card = verify.run("minilm", config.CPU)               # or a hub id (online), or a local checkpoint folder
    card["checks"]      # one dict per check: name, status pass/fail/warn, one-line reason, numbers, seconds
    rec = verify.record("minilm", profile)   # measured("verify/minilm", verify.scorecard_record, ...): stored

The checks (CHECKS, each a function in lab.verify_checks): licence; loads as a sequence classifier; fine-tune
budget (lab.budget); checkpoint reload in a fresh process (lab.checkpoint_checks, week 1); LoRA reload on another seed plus
the trap check (lab.lora, week 2); int8 through PyTorch and ONNX Runtime with the placement report (lab.quantize,
lab.runtime, week 4); the ONNX export against fp32 logits; two same-seed runs. A check that raises becomes a `fail`
row naming the error, and the others still run: the scorecard matters most exactly when a model breaks something.
Display: lab.display.scorecard. Command line: `python -m lab verify MODEL` (lab.__main__).
"""
from __future__ import annotations

import hashlib
import re
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from lab import models, train
from lab.record import scratch
from lab.record.progress import note
from lab.record.store import measured
from lab.verify_checks import (FUNCTIONS, ONNX_ATOL, BadModel, Check, Subject, duration,  # noqa: F401 (used by callers)
                               resolve)

CHECKS = tuple(FUNCTIONS)     # licence, loads, budget, checkpoint, lora, int8, onnx, determinism: in this order

# What the "picking a model" page verifies, per profile: (model, checks). The base-sized random stand-ins get the
# checks that need no training: twelve training steps of a 150M-parameter model take minutes on a 2-core CPU, and
# every check after `loads` trains. Smoke checks one tiny model, so that the page's test takes seconds.
PAGE = {
    "smoke": [("tiny-bert", ("licence", "loads", "budget", "onnx"))],
    "cpu": [("minilm", CHECKS), ("tiny-modernbert", CHECKS), ("tiny-deberta", CHECKS),
            ("modernbert-base-random", ("licence", "loads")), ("deberta-v3-base-random", ("licence", "loads"))],
    "gpu": [("modernbert-base", CHECKS), ("deberta-v3-base", CHECKS), ("minilm", CHECKS)],
    # The rehearsals check the course's architecture in full: ModernBERT-base's shapes (random weights, so licence
    # warns), every check, as `gpu` checks the real ModernBERT-base; the other candidates are not rehearsed.
    "rehearsal": [("modernbert-base-random", CHECKS)],
    "rehearsal-smoke": [("tiny-modernbert", CHECKS)],
}


def parse_only(only: str | None) -> list[str]:
    names = [n.strip() for n in (only or "").split(",") if n.strip()] or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(map(repr, unknown))} in --only; the checks are "
                         f"{','.join(CHECKS)}")
    return names



# ---------------------------------------------------------------- running them

def run_check(name: str, subject: Subject) -> Check:
    """One check, timed; an exception becomes a fail row that quotes it and the function it came from."""
    start = time.perf_counter()
    try:
        result = FUNCTIONS[name](subject)
    except Exception as e:  # any failure of the model under test is a finding, not a crash of the scorecard
        where = traceback.extract_tb(e.__traceback__)[-1]
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()      # the ONNX exporter colours its messages
        first = text.splitlines()[0][:300] if text else ""
        result = Check(name, "fail", f"crashed: {type(e).__name__}: {first}",
                       {"error": type(e).__name__, "where": f"{Path(where.filename).name}:{where.name}"})
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def run(model: str, profile, only=None, say=note) -> dict:
    """Every check named in `only` (all by default) on MODEL, in CHECKS order, saying each as it ends."""
    names = [n for n in CHECKS if n in (only or CHECKS)]
    with scratch.directory("verify") as tmp:
        subject = Subject(model, profile, Path(tmp))
        checks = []
        for i, name in enumerate(names, 1):
            say(f"[verify] {model}: {name} ({i}/{len(names)}) ...")
            checks.append(run_check(name, subject))
            say(f"[verify] {model}: {name}: {checks[-1].status} in {checks[-1].seconds:.1f} s: {checks[-1].reason}")
    c = models.REGISTRY.get(model)
    return {"model": model, "kind": subject.kind, "profile": subject.profile.name,
            "weights": c.weights if c else "as given", "architecture": c.arch if c else None,
            "checks": [asdict(c) for c in checks]}


def scorecard_record(profile, model: str, only: list[str] | None = None, identity: str = "") -> dict:
    """`run` for lab.record.store.measured: `identity` (lab.recipes.verify.identity) is only there to make a changed folder
    re-measure."""
    return run(model, profile, only)


def record(model: str, profile, only=None) -> dict:
    """The scorecard as a measurement record ('verify/<model>'): run once, reused until the code, the profile,
    the checks asked for, or a folder's files change (lab.record.store)."""
    return measured(record_name(model), scorecard_record, profile=profile, device=train.default_device(), model=model,
                    only=[n for n in CHECKS if n in (only or CHECKS)], identity=identity(model))


def page_records(profile) -> list[dict]:
    """The scorecard records of the page's candidates on this profile (PAGE), measured once each."""
    return [record(model, profile, only) for model, only in PAGE[profile.name]]


def identity(model: str) -> str:
    """A folder's config.json and weight files, hashed: a record of a folder goes stale when they change."""
    folder = Path(model)
    if not folder.is_dir():
        return ""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def record_name(model: str) -> str:
    """'verify/<model>': a registry key as it is; a hub id with '--' for '/'; a folder by its name and a hash."""
    if model in models.REGISTRY:
        slug = model
    elif Path(model).is_dir():
        where = Path(model).resolve()
        slug = f"folder-{where.name}-{hashlib.sha256(str(where).encode()).hexdigest()[:8]}"
    else:
        slug = model.replace("/", "--")
    return "verify/" + re.sub(r"[^a-z0-9_\-.]+", "-", slug.lower()).strip("-.")


def failed(card: dict) -> list[str]:
    return [c["name"] for c in card["checks"] if c["status"] == "fail"]

