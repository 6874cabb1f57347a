"""Week 4's records: week 1's model through every int8 route, and where ONNX Runtime really ran the int8 model.

    measured("week4/routes", week4.routes_record, profile=profile, device=device, run_on=device)
    measured("week4/placement", week4.placement_record, profile=profile, device=device, requested="cuda")

(`measured` keeps `device` to name the record's hardware; `run_on` is what reaches the recipe.) Latency is not
measured here: every variant is timed in one interleaved run (lab.recipes.latency).
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

from lab import data, quantize, runtime, train
from lab.record import scratch


def routes_record(profile, run_on: str = "cpu", routes=None) -> dict:
    """The profile's fine-tuned model through every route on `run_on` ('cpu' or 'cuda'): size, accuracy, drift."""
    model, tokenizer = train.finetuned(profile)
    return quantize.compare_routes(model.cpu().eval(), tokenizer, profile, run_on, routes)


def placement_record(profile, route: str = "onnx-int8-quint8", requested: str = "cuda") -> dict:
    """Ask ORT to run the int8 model on `requested` (CUDA by default) with profiling on, and report where every
    node ran: the placement report the page shows. On a machine without a working CUDA provider this records the
    whole-session fallback; on a GPU, the per-node fallback of the int8 ops."""
    model, tokenizer = train.finetuned(profile)
    enc = data.encode(tokenizer, data.load_splits(profile).test, profile.max_length)
    sample = data.sample_batches(enc, (1,), seed=profile.seed)[1]
    with scratch.directory("onnx") as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", runtime.FallbackWarning)
        fp32, path = Path(tmp) / "model-fp32.onnx", Path(tmp) / f"{route}.onnx"
        quantize.export_onnx(copy.deepcopy(model).cpu().eval(), sample, fp32)
        quantize.quantize_onnx(fp32, path, route.rsplit("-", 1)[1])
        feeds = {k: sample[k].numpy() for k in ("input_ids", "attention_mask")}
        placed, events = runtime.profile_placement(path, feeds, requested)
    return {"route": route, "requested_device": requested, **placed.to_dict(), "rows": placed.rows(),
            "warnings": [str(w.message) for w in caught if issubclass(w.category, runtime.FallbackWarning)],
            "likely_cause": runtime.likely_cause() if not placed.ok else "", "node_events": len(events)}
