"""The eight checks of the scorecard (lab.recipes.verify), one function each, on a Subject: the candidate under check,
loaded, trained and exported once for all of them.

    subject = Subject("minilm", config.CPU, workdir)      # a registry key, a hub id (online) or a checkpoint folder
    check_lora(subject)       # Check(name="lora", status="pass", reason="...", numbers={...}, seconds=0.0)

Each check reuses a week's module and reimplements none: lab.budget (the projection), lab.checkpoint_checks (week 1's
reload in a fresh process), lab.lora (week 2's reload on another seed and its trap check), lab.quantize and
lab.runtime (week 4's routes and placement report). They train on a short run of the profile (two epochs of six
batches, week 1's checks (lab.recipes.week1)), so a small model takes about a minute on a CPU.
"""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab import budget, checkpoint, checkpoint_checks, config, data, lora, models, quantize, runtime, train
from lab.budget import duration
from lab.record.env import hub_reachable

COURSE = config.GPU          # the course workload: all of Rotten Tomatoes, its epochs and batch size, on a T4
ONNX_ATOL = 1e-4             # max |logit difference| for the export: float32 reordering stays near 1e-6
INT8_MAX_DROP = 0.02         # an int8 route that loses more accuracy than this (2 points) is a warning
OPEN_LICENCES = {"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0"}
NOT_OPEN = ("-nc", "-nd", "non-commercial", "noncommercial", "research-only", "proprietary")


class BadModel(ValueError):
    """MODEL is none of: a registry key, a reachable hub id, a local checkpoint folder. Says what would work."""


@dataclass
class Check:
    name: str
    status: str = "pass"                 # pass, fail or warn
    reason: str = ""                     # one line
    numbers: dict = field(default_factory=dict)
    seconds: float = 0.0



def resolve(model: str) -> str:
    """'key', 'folder' or 'hub' for MODEL, or BadModel with the reason and the alternatives."""
    if model in models.REGISTRY:
        try:
            if models.get(model).source == "hub":
                models.pretrained_source(model)
        except models.ModelUnavailable as e:
            raise BadModel(str(e)) from None
        return "key"
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadModel(f"{model} is a folder but not a transformers checkpoint (no config.json in it); give "
                           f"the folder that save_pretrained wrote, a registry key ({', '.join(models.REGISTRY)}) "
                           f"or a hub id")
        return "folder"
    if model.count("/") == 1 and not model.startswith((".", "/")):
        if not hub_reachable():
            raise BadModel(f"{model} looks like a hub id, but the Hugging Face hub is not reachable here; run it "
                           f"where the hub is (Kaggle with internet on), or verify offline: "
                           f"{', '.join(models.OFFLINE_ALTERNATIVES)}, or a local checkpoint folder")
        return "hub"
    raise BadModel(f"unknown model {model!r}: not a registry key ({', '.join(models.REGISTRY)}), not a folder, "
                   f"not a hub id (owner/name)")



def short_profile(profile, model: str):
    """Two epochs of six batches (week 1's short run) on the candidate; a test subset for the int8 accuracy."""
    short = checkpoint_checks.short_profile(profile).but(model=model, bench_repeats=2, bench_batch_sizes=(1, 16))
    return short.but(test_size=min(short.test_size or 256, 256))


class Subject:
    """The candidate under check, and what its checks share: loaded once, trained once, exported once."""

    def __init__(self, model: str, profile, workdir: Path):
        self.model, self.kind = model, resolve(model)
        self.profile, self.workdir, self.cache = short_profile(profile, model), Path(workdir), {}

    def load(self, seed: int):
        """(classifier, what loading left random): as a pretrained checkpoint loads (lab.lora.load_base), the head
        from `seed`; a random-init stand-in as week 1 builds it (models.load_model), all of it from `seed`."""
        if self.kind == "key" and models.get(self.model).source == "config":
            return models.load_model(self.model, seed=seed), ["(every weight: random-init stand-in)"]
        return lora.load_base(self.model, seed=seed)

    def tokenizer(self):
        if "tokenizer" not in self.cache:
            from transformers import AutoTokenizer
            own = self.kind == "hub" or (self.kind == "folder" and any(
                (Path(self.model) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")))
            if own:
                self.cache["tokenizer"] = AutoTokenizer.from_pretrained(self.model)
            else:   # a folder without a tokenizer gets the packaged MiniLM one (BERT WordPiece), as stand-ins do
                self.cache["tokenizer"] = models.load_tokenizer(self.model if self.kind == "key" else "tiny-bert")
        return self.cache["tokenizer"]

    def run(self, seed: int | None = None):
        """(model, history): a fresh short run from `seed` (the profile's by default)."""
        model, _ = self.load(self.profile.seed if seed is None else seed)
        history = train.train(model, self.tokenizer(), data.load_splits(self.profile), self.profile, progress=False)
        return model.eval(), history

    def trained(self):
        if "trained" not in self.cache:
            self.cache["trained"] = self.run()
        return self.cache["trained"]

    def batch(self):
        return lora.fixed_batch(self.tokenizer(), self.profile)

    def onnx(self) -> Path:
        """The trained model exported once (lab.quantize.export_onnx) to the work folder."""
        path = self.workdir / "model-fp32.onnx"
        if not path.exists():
            self.cache["export"] = quantize.export_onnx(copy.deepcopy(self.trained()[0]), self.batch(), path)
        return path


# ---------------------------------------------------------------- the checks, one function each

def check_licence(s: Subject) -> Check:
    found, where = None, ""
    if s.kind == "key":
        c = models.get(s.model)
        if c.weights == "random":
            real = next((r for r in models.REGISTRY.values() if r.weights == "real" and r.arch == c.arch), None)
            twin = f"; the real {c.arch} model here, {real.key}, is {real.licence}" if real else ""
            return Check("licence", "warn", f"random-init stand-in: its weights carry no licence{twin}",
                         {"licence": c.licence, "source": "registry"})
        found, where = c.licence, "registry"
    elif s.kind == "folder":
        readme = Path(s.model) / "README.md"
        if readme.is_file() and readme.read_text().startswith("---"):
            import yaml
            card = yaml.safe_load(readme.read_text().split("---")[1]) or {}
            found, where = card.get("license"), "model card"
        if not found:
            found, where = json.loads((Path(s.model) / "config.json").read_text()).get("license"), "config.json"
    else:
        from huggingface_hub import model_info
        found, where = getattr(model_info(s.model).card_data, "license", None), "hub model card"
    if not found:
        return Check("licence", "warn", "unknown: no licence in the model card (README.md) or config.json; read "
                     "the source's terms before teaching with it", {"licence": None})
    name = str(found).lower()
    numbers = {"licence": found, "source": where}
    if name in OPEN_LICENCES:
        return Check("licence", "pass", f"{found} ({where}): open, students may use and share it", numbers)
    if any(m in name for m in NOT_OPEN):
        return Check("licence", "fail", f"{found} ({where}): not open; students could not redistribute their "
                     f"fine-tuned model", numbers)
    return Check("licence", "warn", f"{found} ({where}): not one of the open licences lab knows "
                 f"({', '.join(sorted(OPEN_LICENCES))}); read its terms", numbers)


def check_loads(s: Subject) -> Check:
    model, missing = s.load(s.profile.seed)
    logits = lora.logits(model, s.batch())
    numbers = {"params": models.n_params(model), "params_non_embedding": models.n_params_non_embedding(model),
               "architecture": model.config.model_type, "random_at_load": missing,
               "logits_shape": list(logits.shape)}
    if logits.shape[-1] != 2 or not torch.isfinite(logits).all():
        return Check("loads", "fail", f"logits of shape {tuple(logits.shape)}, finite: "
                     f"{bool(torch.isfinite(logits).all())}; expected finite (batch, 2)", numbers)
    return Check("loads", "pass", f"{model.config.model_type} classifier, {numbers['params'] / 1e6:.1f}M "
                 f"parameters; new at load: {', '.join(sorted({k.split('.')[0] for k in missing})) or 'nothing'}",
                 numbers)


def check_budget(s: Subject) -> Check:
    """The course's full fine-tune (COURSE's recipe, lab.budget.Workload) on a T4, estimated from FLOPs, against
    the budget; and the same workload here, projected from the short run's measured step time."""
    model, history = s.trained()
    workload = budget.full_finetune(COURSE, s.tokenizer())
    here = budget.project(history, workload, gpu_name=train.gpu_name(history["device"]))
    t4_s = budget.t4_seconds(here["workload"], history["n_params_non_embedding"])
    numbers = {"workload": here["workload"], "here_s": here["projected_total_s"], "here_device": history["device"],
               "measured_s_per_padded_token": here["measured_s_per_padded_token"],
               "t4_s_estimate": t4_s, "t4_tflops_assumed": budget.t4_rate() / 1e12, "budget_s": budget.BUDGET_S}
    status = "pass" if t4_s <= budget.BUDGET_S else "fail"
    wl = here["workload"]
    return Check("budget", status, f"the course's full fine-tune ({wl['examples']:,} snippets x {wl['epochs']} "
                 f"epochs): T4 at least {duration(t4_s)} (a lower bound from FLOPs at an assumed "
                 f"{budget.t4_rate() / 1e12:.0f} TFLOP/s) {'within' if status == 'pass' else 'over'} the {budget.BUDGET_S / 60:.0f}-min budget; "
                 f"here {duration(here['projected_total_s'])} ({history['device']}, measured step time)", numbers)


def check_checkpoint(s: Subject) -> Check:
    model, _ = s.trained()
    r = checkpoint_checks.reload_check(model, s.tokenizer(), s.profile, s.workdir / "checkpoint")
    numbers = {"max_abs_diff": r["max_abs_diff"], "fingerprint": r["fingerprint"]}
    if r["pass"]:
        return Check("checkpoint", "pass", "reloaded in a fresh process: logits bit-identical", numbers)
    return Check("checkpoint", "fail", f"reloaded in a fresh process: logits differ by up to "
                 f"{r['max_abs_diff']:.3g}", numbers)


def check_lora(s: Subject) -> Check:
    settings = lora.settings_for(s.profile)
    base, missing = lora.load_base(s.model, seed=s.profile.seed)     # a stand-in's body saved once: fixed, as real
    model = lora.wrap(base, settings, seed=s.profile.seed)
    train.train(model, s.tokenizer(), data.load_splits(s.profile), lora.train_profile(s.profile, settings),
                progress=False)
    folder = lora.save(model, s.workdir / "adapter", source=s.model)
    trap = lora.trap_check(model, missing)
    reload = lora.reload_check(model, folder, s.batch(), seed=s.profile.seed + 1)
    numbers = {"targets": lora.target_modules(model.get_base_model()), "trainable": lora.parameter_counts(model),
               "unsaved_random": trap["unsaved"], "max_abs_diff": reload["max_abs_diff"]}
    if not trap["pass"]:
        return Check("lora", "fail", f"trap: {trap['message']}", numbers)
    if not reload["pass"]:
        return Check("lora", "fail", f"adapter reloaded on base seed {s.profile.seed + 1}: logits differ by up to "
                     f"{reload['max_abs_diff']:.3g}", numbers)
    return Check("lora", "pass", "adapter reloaded in a fresh process on another seed: logits bit-identical; "
                 "nothing random left unsaved", numbers)


def check_int8(s: Subject) -> Check:
    model, _ = s.trained()
    res = quantize.compare_routes(copy.deepcopy(model).cpu(), s.tokenizer(), s.profile, "cpu",
                                  routes=["pytorch-int8", "onnx-int8-qint8"])
    rows = {r["route"]: r for r in res["routes"]}
    numbers = {name: {k: r.get(k) for k in ("status", "reason", "size_ratio", "accuracy_delta", "max_logit_diff")}
               for name, r in rows.items() if name != quantize.REFERENCE}
    numbers["n_test"] = res["n_test"]
    broken = [f"{n}: {r['reason']}" for n, r in rows.items() if r["status"] != "ok"]
    if broken:
        return Check("int8", "fail", "; ".join(broken), numbers)
    # where the int8 model's ops run when CUDA is asked for (week 4's placement report)
    q = s.workdir / "model-int8.onnx"
    quantize.quantize_onnx(s.onnx(), q, "qint8")
    with_cuda, _ = _placement(q, s.batch())
    numbers["cuda_placement"] = with_cuda.to_dict()
    worst = min(r["accuracy_delta"] for n, r in rows.items() if n != quantize.REFERENCE)
    sizes = ", ".join(f"{n} {rows[n]['size_ratio']:.1f}x smaller" for n in numbers if n in rows)
    where = f"placement with CUDA asked for: {with_cuda.summary()}"
    if with_cuda.per_node_fallback or worst < -INT8_MAX_DROP:
        why = (f"accuracy drops {-worst:.3f}" if worst < -INT8_MAX_DROP else "int8 ops fall back to the CPU")
        return Check("int8", "warn", f"both routes run ({sizes}) but {why}; {where}", numbers)
    return Check("int8", "pass", f"{sizes}; accuracy change {worst:+.3f} at worst; {where}", numbers)


def _placement(path: Path, batch: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.FallbackWarning)    # reported in the row, not as a warning
        return runtime.profile_placement(path, {k: v.numpy() for k, v in batch.items()}, "cuda")


def check_onnx(s: Subject) -> Check:
    model, _ = s.trained()
    batch = s.batch()
    path = s.onnx()
    sess = runtime.session(path, "cpu")
    theirs = sess.run(["logits"], {k: v.numpy() for k, v in batch.items()})[0]
    ours = lora.logits(model, batch).numpy()
    diff = float(np.abs(theirs - ours).max())
    numbers = {"max_abs_diff": diff, "tolerance": ONNX_ATOL, **s.cache.get("export", {})}
    ok = diff <= ONNX_ATOL
    return Check("onnx", "pass" if ok else "fail", f"exported logits within {diff:.2g} of PyTorch fp32 "
                 f"({'within' if ok else 'over'} the tolerance {ONNX_ATOL:g})", numbers)


def check_determinism(s: Subject) -> Check:
    a, _ = s.trained()
    b, _ = s.run()
    fa, fb = (checkpoint.fingerprint(checkpoint.weights(m)) for m in (a, b))
    numbers = {"fingerprint": fa, "again": fb, "device": str(next(a.parameters()).device)}
    if fa == fb:
        return Check("determinism", "pass", "two same-seed runs: weights bit-identical", numbers)
    differ = [k for k, v in checkpoint.weights(a).items() if not torch.equal(v, checkpoint.weights(b)[k])]
    return Check("determinism", "fail", f"two same-seed runs end with different weights ({len(differ)} tensors, "
                 f"e.g. {', '.join(differ[:3])})", numbers)


FUNCTIONS = {"licence": check_licence, "loads": check_loads, "budget": check_budget, "checkpoint": check_checkpoint,
             "lora": check_lora, "int8": check_int8, "onnx": check_onnx, "determinism": check_determinism}

