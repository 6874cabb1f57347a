"""How a scorecard (lab.recipes.verify) is shown: the terminal's Markdown table, and the page's tables across candidates."""
from __future__ import annotations

from lab import models
from lab.record import env
from lab.display.report import markdown_table
from lab.recipes.verify import CHECKS

MARK = {"pass": "pass", "fail": "FAIL", "warn": "warn"}

# Each check as a table header or a findings row names it: what it checks, in the words of the page's five
# requirements, short enough for a column on a phone. The keys are the check names `--only` takes.
TITLES = {"licence": "open licence", "loads": "loads as classifier", "budget": "fits the budget",
          "checkpoint": "checkpoint reload", "lora": "LoRA reload", "int8": "int8", "onnx": "ONNX export",
          "determinism": "same-seed runs"}


def title(name: str) -> str:
    """A check's readable name (TITLES), or its key for a check this table does not know yet."""
    return TITLES.get(name, name)


def check_rows(card: dict) -> list[dict]:
    """One row per check: its status, its one-line reason, its time."""
    return [{"check": c["name"], "result": MARK[c["status"]], "seconds": c["seconds"], "why": c["reason"]}
            for c in card["checks"]]


def markdown(card: dict) -> str:
    """The scorecard as the terminal shows it at the end of `python -m lab verify`."""
    head = f"Scorecard of {card['model']} ({card['kind']}, {card['weights']} weights, profile {card['profile']})"
    return head + "\n\n" + markdown_table(check_rows(card), floatfmt=".1f")


def label(card: dict) -> str:
    """The candidate as the page names it: a stand-in says so, since its accuracy means nothing."""
    c = models.REGISTRY.get(card["model"])
    if c is not None and c.weights == "random":
        return f"{card['model']} (random-init {c.arch} stand-in)"
    return card["model"]


def candidates_rows(records: list[dict]) -> list[dict]:
    """One row per candidate record, one column per check (pass / FAIL / warn; blank if not run)."""
    rows = []
    for rec in records:
        card = rec["result"]
        status = {c["name"]: MARK[c["status"]] for c in card["checks"]}
        rows.append({"candidate": label(card), **{title(name): status.get(name, "") for name in CHECKS},
                     "measured on": env.device_label(rec["provenance"]), "wall time (s)": round(rec["wall_s"])})
    return rows


def findings_rows(records: list[dict], statuses=("fail", "warn")) -> list[dict]:
    """What the checks caught: every failing or warning check of every candidate, with its reason."""
    return [{"candidate": label(rec["result"]), "check": title(c["name"]), "result": MARK[c["status"]],
             "why": c["reason"]}
            for rec in records for c in rec["result"]["checks"] if c["status"] in statuses]


def check(card: dict, name: str) -> dict | None:
    """The named check of a scorecard, or None when it was not run."""
    return next((c for c in card["checks"] if c["name"] == name), None)


# ---------------------------------------------------------------- the int8 pipeline on one architecture
# (lab.recipes.int8_pipeline: build, PyTorch fp32, export, quantize, sessions, logits against fp32)

def pipeline_what(s: dict) -> str:
    """What one step of the pipeline record measured, in words; a step that did not run gives its reason."""
    if s["status"] != "ok":
        return s["reason"]
    if s["step"] == "pytorch fp32":
        return (f"largest |logit| {s['max_abs_logit']:.2g}; {s['distinct_predictions']} distinct "
                f"{'prediction' if s['distinct_predictions'] == 1 else 'predictions'} on the batch")
    if s["step"] == "onnx export":
        return f"{s['attention']} attention, opset {s['opset']}, {s['size_mb']:.0f} MB"
    if s["step"].startswith("quantize"):
        ops = ", ".join(f"{n} {op}" for op, n in s["ops"].items()) or "no int8 operators"
        return f"{s['size_mb']:.0f} MB; {ops}"
    return (f"max |logit difference| from PyTorch fp32 {s['max_abs_diff']:.2g}; {s['same_predictions']} of {s['n']} "
            f"predictions the same")


def pipeline_rows(result: dict) -> list[dict]:
    """One row per step of an int8-pipeline record: its result (pass / FAIL / skipped) and what it measured."""
    mark = {**MARK, "ok": "pass", "failed": "FAIL", "skipped": "skipped"}
    return [{"step": s["step"], "result": mark[s["status"]], "what it measured": pipeline_what(s)}
            for s in result["steps"]]


def pipeline_sentence(result: dict, tolerance: float) -> str:
    """What broke and what did not, in one or two sentences: the first failure with its error, or, when every step
    ran, how close the fp32 export and the int8 models came to PyTorch fp32 (the export judged by `tolerance`)."""
    steps = {s["step"]: s for s in result["steps"]}
    broke = [s for s in result["steps"] if s["status"] == "failed"]
    skipped = [s["step"] for s in result["steps"] if s["status"] == "skipped"]
    ran = [s["step"] for s in result["steps"] if s["status"] == "ok"]
    if broke:
        first = broke[0]
        text = f"The pipeline broke at **{first['step']}**: `{first['reason']}`."
        if len(broke) > 1:
            text += " Also failed: " + ", ".join(s["step"] for s in broke[1:]) + "."
        if skipped:
            text += " Not run, for want of a failed step's output: " + ", ".join(skipped) + "."
        return text + (" What ran: " + ", ".join(ran) + "." if ran else "")
    export = steps["onnx fp32 session"]
    within = "within" if export["max_abs_diff"] <= tolerance else "outside"
    int8 = [s for name, s in steps.items() if name.startswith("onnx q")]
    worst = max(s["max_abs_diff"] for s in int8)
    same = min(s["same_predictions"] for s in int8)
    return (f"Every step ran. The fp32 export computes PyTorch's logits to within {export['max_abs_diff']:.1g} "
            f"({within} the scorecard's tolerance of {tolerance:g}); the int8 models' logits differ from fp32's by "
            f"{worst:.2g} at most, against a largest fp32 logit of {steps['pytorch fp32']['max_abs_logit']:.2g}, "
            f"and {same} of {int8[0]['n']} predictions stay the same.")


def pipeline_fp32_sentence(result: dict, weights: str = "qint8") -> str:
    """What the quantizer left in fp32, from the `quantize <weights>` step: every weight in int8, or which weights
    reach their MatMuls another way and stay fp32. Empty when that step did not run."""
    q = next((s for s in result["steps"] if s["step"] == f"quantize {weights}"), None)
    if q is None or q["status"] != "ok":
        return ""
    int8 = q["ops"].get("MatMulInteger", 0)
    if not q["float_weights"]:
        return f"Every weight that reaches a MatMul was quantized: {int8} MatMulInteger nodes, none left in fp32."
    kinds = " and ".join(f"`{k.removesuffix('.weight')}`" for k in q["float_weight_kinds"])
    per = q["float_matmuls"] / q["float_weights"]
    return (f"{int8} MatMuls run in int8, but {q['float_weights']} weight matrices stay in fp32, all of them "
            f"{kinds}: each feeds {per:g} MatMuls through a Transpose node of the export, and ORT's dynamic "
            f"quantizer quantizes a MatMul only when its weight is a stored tensor.")
