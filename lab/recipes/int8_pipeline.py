"""Week 4's int8 pipeline on one architecture, step by step: build, PyTorch fp32 logits, ONNX export, ORT dynamic
quantization (int8 and uint8 weights), sessions, and each session's logits against PyTorch fp32 on one fixed batch.

    rec = int8_pipeline.record(profile)   # measured("int8-pipeline/<model>", pipeline_record, ...): stored
    rec["result"]["steps"]                # one row per step: ok or failed, with the error's type and first line

"Picking a model" runs it on DeBERTa-v3-base's architecture (random weights: the hub checkpoint cannot be had
offline), the model the course's origin story says its quantization pipeline could not handle. Nothing here is
new code: the export, the quantizer and the session are week 4's (lab.quantize.export_onnx, quantize_onnx,
lab.runtime.session), so a step that fails here fails in week 4 too. A failed step is recorded with its error and
the steps that need its output are skipped, never guessed. No latency (no quiet CPU needed): sizes, logit
differences, the int8 graph's operators and the weights its quantizer left in fp32. The page judges the numbers
(the export against lab.verify_checks.ONNX_ATOL).
"""
from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from lab import data, models, quantize, runtime, sizes
from lab.record import scratch
from lab.record.store import measured

# The architecture each profile runs: DeBERTa-v3-base's shapes, except where a page must execute in seconds.
MODEL = {"smoke": "tiny-deberta", "rehearsal-smoke": "tiny-deberta"}
DEFAULT_MODEL = "deberta-v3-base-random"
BATCH = 8                 # test snippets in the fixed batch: real lengths, padded to the longest
WEIGHTS = ("qint8", "quint8")
INT8_OPS = ("MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def model_for(profile) -> str:
    return MODEL.get(profile.name, DEFAULT_MODEL)


def record_name(model: str) -> str:
    return f"int8-pipeline/{model}"


def record(profile) -> dict:
    """The pipeline's record for the profile's architecture (model_for), measured once, reused until stale."""
    model = model_for(profile)
    return measured(record_name(model), pipeline_record, profile=profile, device="cpu", model=model)


def op_counts(path: Path) -> dict:
    """How many nodes of each int8 operator the quantized graph holds: what the quantizer actually emitted."""
    import onnx
    counts = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return {op: counts[op] for op in INT8_OPS if counts[op]}


def float_weight_matmuls(path: Path) -> dict:
    """The weights that still reach a float MatMul in the quantized graph, directly or through one Transpose.
    ORT's dynamic quantizer quantizes a MatMul whose weight is a stored tensor (an initializer); a weight the export
    routes through another node first (a Transpose, e.g. for a projection applied twice) stays fp32."""
    import onnx
    graph = onnx.load(str(path)).graph
    stored = {i.name for i in graph.initializer}
    made_by = {o: n for n in graph.node for o in n.output}
    weights, matmuls = set(), 0
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        found = {x for x in node.input if x in stored}
        for x in node.input:
            p = made_by.get(x)
            if p is not None and p.op_type == "Transpose":
                found |= {i for i in p.input if i in stored}
        matmuls += bool(found)
        weights |= found
    return {"float_matmuls": matmuls, "float_weights": len(weights),
            "float_weight_kinds": sorted({".".join(w.split(".")[-2:]) for w in weights})}


def logit_numbers(logits: np.ndarray, reference: np.ndarray) -> dict:
    """A session's logits against PyTorch fp32's on the same batch."""
    return {"max_abs_diff": float(np.abs(logits - reference).max()),
            "same_predictions": int((logits.argmax(1) == reference.argmax(1)).sum()), "n": len(reference)}


def pipeline_record(profile, model: str) -> dict:
    """Every step of the pipeline on `model`, in order; a step that raises is a failed row quoting the error."""
    steps: list[dict] = []

    def step(name: str, fn, *needs: str):
        """Run fn() as step `name` unless a step it needs did not succeed; its dict becomes the row's numbers."""
        blocked = [n for n in needs if not any(s["step"] == n and s["status"] == "ok" for s in steps)]
        if blocked:
            steps.append({"step": name, "status": "skipped", "reason": f"needs {', '.join(blocked)}"})
            return None
        try:
            numbers = fn()
        except Exception as e:  # the finding is the error: its type and first line, as week 4's rows quote them
            steps.append({"step": name, "status": "failed", "reason": quantize.failure(e)})
            return None
        steps.append({"step": name, "status": "ok", "reason": "", **(numbers or {})})
        return numbers

    net, tokenizer = models.load(model, seed=profile.seed)
    net = net.cpu().eval()
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    batch = data.sample_batches(enc, (BATCH,), seed=profile.seed)[BATCH]
    feeds = {k: batch[k].numpy() for k in ("input_ids", "attention_mask")}
    out: dict = {}

    def pytorch():
        with torch.inference_mode():
            out["reference"] = net(**batch).logits.float().numpy()
        return {"max_abs_logit": float(np.abs(out["reference"]).max()),
                "distinct_predictions": len(set(out["reference"].argmax(1).tolist()))}

    def ort_logits(path: Path) -> dict:
        sess = runtime.session(path, "cpu", threads=torch.get_num_threads())
        return logit_numbers(sess.run(["logits"], feeds)[0], out["reference"])

    with scratch.directory("onnx") as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        step("pytorch fp32", pytorch)
        step("onnx export", lambda: {**quantize.export_onnx(copy.deepcopy(net), batch, fp32),
                                     "size_mb": sizes.file_mb(fp32)})
        step("onnx fp32 session", lambda: ort_logits(fp32), "onnx export", "pytorch fp32")
        for weights in WEIGHTS:
            path = Path(tmp) / f"model-{weights}.onnx"

            def quantized(path=path, weights=weights):
                quantize.quantize_onnx(fp32, path, weights)
                return {"size_mb": sizes.file_mb(path), "ops": op_counts(path), **float_weight_matmuls(path)}
            step(f"quantize {weights}", quantized, "onnx export")
            step(f"onnx {weights} session", lambda path=path: ort_logits(path), f"quantize {weights}", "pytorch fp32")

    code = type(net).__module__
    return {"model": model, "architecture": models.get(model).arch, "class": type(net).__name__,
            "code": code, "built_in": code.startswith("transformers."), "params": models.n_params(net),
            "linear_layers": sum(isinstance(m, torch.nn.Linear) for m in net.modules()),
            "attention": net.config._attn_implementation, "hidden_act": net.config.hidden_act,
            "batch": list(batch["input_ids"].shape), "steps": steps,
            "failed": [s["step"] for s in steps if s["status"] != "ok"]}


def step_row(result: dict, name: str) -> dict | None:
    """The named step of a pipeline record's result, or None."""
    return next((s for s in result["steps"] if s["step"] == name), None)
