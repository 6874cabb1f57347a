"""The int8 routes, each measured the same way: size on disk, test accuracy, logit drift, and where it ran.

    quantize.compare_routes(model, tokenizer, profile, "cpu")    # week 4's record (lab.recipes.week4) runs this

Routes (ROUTES below): PyTorch fp32 (the reference), fp16 (GPU only), PyTorch dynamic int8 (CPU only), an ONNX
export run by ONNX Runtime in fp32, ORT dynamic int8 with int8 or uint8 weights, and torch.compile. A route that
cannot run somewhere (an export that fails, a GPU-only dtype on a CPU) is a row with the reason, never a crash.
ORT routes carry a placement report (lab.runtime) that says which provider actually ran their nodes.
Latency is not measured here: every variant the course compares is timed in one interleaved run
(lab.variants.time_models), which builds the routes with `build` below.
"""
from __future__ import annotations

import copy
import logging
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lab import data, precision, runtime, sizes
from lab.record import scratch

REFERENCE = "pytorch-fp32"
INT8 = "onnx-int8-qint8"      # the int8 route weeks 5 and 6 ship: ONNX Runtime with int8 weights


@dataclass(frozen=True)
class Route:
    name: str
    backend: str        # "pytorch" or "onnxruntime"
    dtype: str          # weights as stored: fp32, fp16, int8 (qint8 weights), uint8
    devices: tuple      # where the route can run at all
    note: str = ""


ROUTES: dict[str, Route] = {r.name: r for r in [
    Route("pytorch-fp32", "pytorch", "fp32", ("cpu", "cuda"), "the reference"),
    Route("pytorch-fp16", "pytorch", "fp16", ("cuda",), "half precision: GPU tensor cores; measured on the GPU only"),
    Route("pytorch-bf16", "pytorch", "bf16", ("cpu",),
          "half precision on a CPU: bf16 weights and oneDNN's bf16 kernels, where the CPU has them natively "
          "(AVX-512 bf16 or AMX); skipped elsewhere"),
    Route("pytorch-int8", "pytorch", "int8", ("cpu",),
          "torch.ao quantize_dynamic on nn.Linear (deprecated in torch 2.10+, still shipped); embeddings stay fp32; "
          "its kernels (fbgemm/qnnpack) are CPU-only"),
    Route("onnx-fp32", "onnxruntime", "fp32", ("cpu", "cuda"), "torch.onnx.export (dynamo), then ONNX Runtime"),
    Route("onnx-int8-qint8", "onnxruntime", "int8", ("cpu", "cuda"),
          "ORT quantize_dynamic, int8 weights: MatMulInteger + DynamicQuantizeLinear (uint8 activations)"),
    Route("onnx-int8-quint8", "onnxruntime", "uint8", ("cpu", "cuda"), "ORT quantize_dynamic, uint8 weights"),
    Route("torch-compile", "pytorch", "fp32", ("cpu", "cuda"), "torch.compile(dynamic=True): same weights as fp32"),
]}

# The CPU features that decide which int8 and bf16 kernels run (Linux /proc/cpuinfo names): VNNI multiplies uint8
# activations by int8 weights in one instruction; AMX tiles do int8 and bf16 matrix products; avx512_bf16 does bf16
# dot products. Kept in the routes record, so a page can say which kernels its numbers ran on.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")

# Under the smoke profile the page must execute in seconds; compiling alone takes far longer on a small CPU.
SMOKE_SKIPS = {"torch-compile": "skipped under the smoke profile: compilation alone exceeds its time budget"}


# ---------------------------------------------------------------- sizes and exports

def torch_mb(model, workdir: Path, name: str) -> float:
    """What the model's state_dict takes on disk via torch.save, in MB."""
    path = workdir / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return sizes.file_mb(path)


@contextmanager
def _quiet(logger: str = ""):
    """Raise a logger to ERROR for a while. Used for the root logger around quantize_dynamic, which advises
    pre-processing (symbolic shape inference that cannot handle the dynamo export's symbolic sequence length, so the
    advice does not apply), and for torch.onnx, which lists the torchvision ops it skips."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def export_onnx(model, sample: dict, path: Path) -> dict:
    """Export a classifier to one ONNX file with dynamic batch and sequence axes; returns what was done.

    Tries the model's attention implementation (sdpa in transformers 5), then eager. The file is pinned to an IR
    version this onnxruntime reads, and its intermediate shape annotations (value_info) are dropped: they hold
    shapes traced from the sample batch, which ORT's quantizer re-infers and then rejects as contradictory.
    """
    import onnx
    model = model.cpu().eval()
    kwargs = {k: sample[k].cpu() for k in ("input_ids", "attention_mask")}
    dims = {0: "batch", 1: "seq"}    # (batch, tokens): both vary between calls
    errors = []
    for attn in dict.fromkeys([model.config._attn_implementation, "eager"]):
        try:
            model.set_attn_implementation(attn)
            with warnings.catch_warnings(), _quiet("torch.onnx"):
                warnings.simplefilter("ignore")     # exporter chatter (pytree deprecations, axis renames)
                torch.onnx.export(model, (), str(path), kwargs=kwargs, input_names=list(kwargs),
                                  output_names=["logits"], dynamic_shapes={k: dims for k in kwargs},
                                  dynamo=True, external_data=False, verbose=False)
            break
        except Exception as e:  # the exporter raises many types; each is a reason to report, not to crash
            errors.append(f"{attn}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    else:
        raise RuntimeError("ONNX export failed with every attention implementation: " + " | ".join(errors))
    proto = onnx.load(str(path))
    del proto.graph.value_info[:]
    exported_ir = proto.ir_version
    runtime.pin_ir_version(proto)
    onnx.save(proto, str(path))
    return {"attention": attn, "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": proto.ir_version, "exported_ir_version": exported_ir, "retries": errors}


def quantize_onnx(src: Path, dst: Path, weights: str) -> None:
    """ORT dynamic quantization: weights stored as int8 ('qint8') or uint8 ('quint8'); activations quantized to
    uint8 at run time by DynamicQuantizeLinear nodes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    weight_type = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[weights]
    with _quiet():
        quantize_dynamic(str(src), str(dst), weight_type=weight_type)


def torch_int8(model):
    """PyTorch eager dynamic quantization of every nn.Linear (CPU-only kernels): (model, the warnings it printed,
    which today announce its deprecation)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = torch.ao.quantization.quantize_dynamic(model.cpu(), {torch.nn.Linear}, dtype=torch.qint8)
    deprecations = sorted({str(w.message).splitlines()[0] for w in caught
                           if issubclass(w.category, (DeprecationWarning, FutureWarning, UserWarning))})
    return q, deprecations


# ---------------------------------------------------------------- running a route

Runner = Callable[[dict], np.ndarray]   # a batch of torch tensors -> logits as a (batch, classes) numpy array


def _torch_runner(model, device: str) -> Runner:
    def run(batch):
        with torch.inference_mode():
            out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        return out.logits.float().cpu().numpy()
    return run


def _ort_runner(sess) -> Runner:
    names = [i.name for i in sess.get_inputs()]
    def run(batch):
        return sess.run(["logits"], {n: batch[n].cpu().numpy() for n in names})[0]
    return run


def predict_logits(run: Runner, enc: data.Encoded, batch_size: int = 64) -> np.ndarray:
    """Logits for every example, in enc's order. Batches are length-sorted so padding stays small."""
    out = np.zeros((len(enc), 0), dtype=np.float32)
    for idx, batch in data.sorted_batches(enc, batch_size):
        logits = run(batch)
        if out.shape[1] == 0:
            out = np.zeros((len(enc), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    return out


def build(route: Route, model, sample: dict, device: str, workdir: Path, threads: int, *, placement: bool = True
          ) -> tuple[Runner, float, dict]:
    """(runner, size in MB, extra facts for the row) for one route on one device. Moves `model` to `device`.
    ORT routes get a placement report unless `placement` is False (a profiled call: the latency harness skips it)."""
    info: dict = {}
    if route.name == "pytorch-fp32":
        m = model.to(device).eval()
        return _torch_runner(m, device), torch_mb(m, workdir, route.name), info
    if route.name == "pytorch-fp16":
        m = copy.deepcopy(model).to(device).half().eval()
        return _torch_runner(m, device), torch_mb(m, workdir, route.name), info
    if route.name == "pytorch-bf16":
        m = copy.deepcopy(model).to(device).to(torch.bfloat16).eval()
        return _torch_runner(m, device), torch_mb(m, workdir, route.name), info
    if route.name == "pytorch-int8":
        m, deprecations = torch_int8(copy.deepcopy(model).cpu().eval())
        info["deprecation"] = "; ".join(deprecations)[:300]
        return _torch_runner(m, "cpu"), torch_mb(m, workdir, route.name), info
    if route.name == "torch-compile":
        m = torch.compile(copy.deepcopy(model).to(device).eval(), dynamic=True)
        return _torch_runner(m, device), torch_mb(model, workdir, route.name), info
    # ONNX Runtime routes share one fp32 export per workdir
    fp32 = workdir / "model-fp32.onnx"
    if not fp32.exists():
        info["export"] = export_onnx(copy.deepcopy(model), sample, fp32)
    path = fp32
    if route.name != "onnx-fp32":
        path = workdir / f"{route.name}.onnx"
        quantize_onnx(fp32, path, route.name.rsplit("-", 1)[1])
    if placement:
        feeds = {k: sample[k].cpu().numpy() for k in ("input_ids", "attention_mask")}
        placed, _ = runtime.profile_placement(path, feeds, device)
        info["placement"] = placed.to_dict()
    sess = runtime.session(path, device, threads=threads)
    return _ort_runner(sess), sizes.file_mb(path), info


def skip_reason(name: str, device: str, profile) -> str:
    """Why a route does not run here ('' when it does): a device it has no kernels for, or the smoke budget."""
    route = ROUTES[name]
    if device not in route.devices:
        return f"{name} runs on {'/'.join(route.devices)} only, not {device}"
    if name == "pytorch-bf16" and not precision.cpu_has_bf16():
        return (f"{name}: this CPU has no native bf16 (neither {' nor '.join(precision.BF16_FLAGS)} among its "
                f"/proc/cpuinfo flags), so PyTorch would emulate it, slower than fp32")
    if profile.name == "smoke" and name in SMOKE_SKIPS:
        return SMOKE_SKIPS[name]
    return ""


def failure(e: Exception) -> str:
    """An export/quantize/compile error in one line, for a row's reason."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"


def compare_routes(model, tokenizer, profile, device: str = "cpu", routes=None) -> dict:
    """Measure every route on `device` against PyTorch fp32 on the same device, on the profile's test split.

    Plain JSON: {"model", "device", "n_test", "threads", "cpu_flags" (KERNEL_FLAGS this CPU has; None on a GPU),
    "routes": one row per route (status ok/skipped/failed, size_mb, accuracy, macro_f1, correct (a '0'/'1' per test
    snippet), accuracy_delta, size_ratio, max_logit_diff, ran_on, ...)}. No latency: lab.recipes.latency.
    """
    from lab import train
    routes = list(routes or ROUTES)
    if REFERENCE not in routes:
        routes.insert(0, REFERENCE)     # every other number is relative to it
    test = data.load_splits(profile).test
    enc = data.encode(tokenizer, test, profile.max_length)
    batches = data.sample_batches(enc, profile.bench_batch_sizes, seed=profile.seed)
    sample = batches[max(batches)]
    threads = torch.get_num_threads()
    labels = np.array(enc.labels)
    rows, reference = [], None
    with scratch.directory("onnx") as tmp:        # a kill leaves the exports to the next run's cleanup
        for name in routes:
            route = ROUTES[name]
            row = {"route": name, "backend": route.backend, "dtype": route.dtype, "device": device,
                   "note": route.note, "status": "ok", "reason": ""}
            if why := skip_reason(name, device, profile):
                rows.append({**row, "status": "skipped", "reason": why})
                continue
            try:
                run, size, info = build(route, model, sample, device, Path(tmp), threads)
                logits = predict_logits(run, enc)
            except Exception as e:  # export/quantize/compile failures become a row with the reason
                rows.append({**row, "status": "failed", "reason": failure(e),
                             "where": traceback.extract_tb(e.__traceback__)[-1].name})
                continue
            if name == REFERENCE:
                reference = logits
            preds = logits.argmax(1)
            scores = train.metrics(preds.tolist(), labels.tolist())
            # one '1' or '0' per test snippet (test-set order): whether this route was right, for paired tests
            correct = "".join("1" if p == y else "0" for p, y in zip(preds.tolist(), labels.tolist()))
            row.update(size_mb=size, **scores, n=len(enc), correct=correct,
                       max_logit_diff=float(np.abs(logits - reference).max()),
                       ran_on=(runtime.Placement.from_dict(info["placement"]).summary() if "placement" in info
                               else ("CPU" if name == "pytorch-int8" else device.upper())),
                       **{k: v for k, v in info.items()})
            rows.append(row)
    ref = next(r for r in rows if r["route"] == REFERENCE)
    for r in rows:
        if r["status"] == "ok":
            r["accuracy_delta"] = r["accuracy"] - ref["accuracy"]
            r["size_ratio"] = ref["size_mb"] / r["size_mb"]
    flags = sorted(set(KERNEL_FLAGS) & precision.cpu_flags()) if device == "cpu" else None
    return {"model": profile.model, "device": device, "n_test": len(enc), "threads": threads,
            "cpu_flags": flags, "routes": rows}


