"""The pages' GPU branches, run without a GPU: from synthetic `cuda-*` records in a temporary records folder.

A synthetic record is a real smoke record transformed: its provenance names a T4, its device fields say cuda, and it
carries `"synthetic": true`, so that `lab check` refuses a page that shows one. Nothing here is ever committed: the
records live in pytest's temporary folder. The real records are the session's smoke course's (conftest.smoke_course),
each test adding its synthetic ones to its own copy of them, and the pages run with the course's fine-tuned runs:
nothing is trained or measured again here but what the GPU branch needs. Week 4's fp16 route, which runs on CUDA
only, is measured for real on the CPU (its builder and runner are device-generic) and its rows joined to the
synthetic record.
"""
import copy
import json
from pathlib import Path

import pytest

from lab import budget, config, quantize, train
from lab.record import store
from lab.site import render_pages
from lab.display import week1 as show1
from lab.display import week4 as show4
from lab import variants
from lab.recipes import week1
from lab.recipes import latency
from lab.recipes import week4

ROOT = Path(__file__).resolve().parent.parent
SMOKE = config.SMOKE
T4 = {"name": "Tesla T4", "memory_gb": 14.7, "capability": "7.5", "cuda": "12.4", "cudnn": None, "driver": None,
      "count": 1}


def _to_cuda(obj):
    """Every `device: cpu` inside a result, as a GPU run would have written it."""
    if isinstance(obj, dict):
        return {k: ("cuda" if k == "device" and v == "cpu" else _to_cuda(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cuda(v) for v in obj]
    return obj


def synthetic_gpu(record: dict) -> dict:
    """A copy of a real record as if measured on a T4, marked synthetic."""
    rec = copy.deepcopy(record)
    rec["synthetic"] = True
    rec["provenance"] = {**rec["provenance"], "device": "cuda", "gpu": dict(T4)}
    rec["result"] = _to_cuda(rec["result"])
    return rec


def store_synthetic(rec: dict, records: Path) -> Path:
    key = store.hardware_key("cuda", rec["provenance"])
    path = records / rec["name"] / f"{key}.json"
    store.write_atomic(path, json.dumps(rec, indent=2, sort_keys=True))
    return path


def render_smoke(page: str, course, records: Path, tmp_path: Path) -> dict:
    """Execute a page of the smoke course on the smoke profile with `records` as its records folder and the course's
    runs; its freeze entry (written under tmp_path, the course's own entry left as it was)."""
    env = {**course.env, "LAB_RECORDS": str(records)}
    render_pages([Path(page)], course.root, freeze_root=tmp_path, env=env)
    entry = tmp_path / "_freeze" / Path(page).with_suffix("") / "execute-results" / "html.json"
    return json.loads(entry.read_text())


@pytest.fixture
def records(course_records):
    """The smoke course's records, copied: the test's synthetic GPU records go in beside them."""
    return course_records


def test_a_synthetic_record_is_marked_and_named_for_the_t4(tmp_path):
    records = tmp_path / "records"
    rec = {"name": "week1/finetune", "config": {}, "result": {"device": "cpu", "rows": [{"device": "cpu"}]},
           "provenance": {"device": "cpu", "cpu": "x", "cpu_count": 2, "gpu": None}}
    path = store_synthetic(synthetic_gpu(rec), records)
    assert path.name == "cuda-tesla-t4.json"
    stored = json.loads(path.read_text())
    assert stored["synthetic"] is True and stored["result"]["rows"][0]["device"] == "cuda"
    assert rec["result"]["device"] == "cpu"              # the real record is left as it was


def test_week1_shows_a_t4_column_with_its_peak_from_a_gpu_record(records):
    cpu = store.measured("week1/finetune", week1.finetune_record, profile=SMOKE, device="cpu")
    gpu = synthetic_gpu(cpu)
    proj = gpu["result"]["projection"]
    proj["gpu"], proj["peak_tflops"] = T4["name"], budget.peak_tflops(T4["name"])
    proj["fraction_of_peak"] = proj["achieved_tflops"] / proj["peak_tflops"]
    store_synthetic(gpu, records)
    rows = show1.throughput_rows(store.load_all("week1/finetune", SMOKE.name))
    by = {r["hardware"]: r for r in rows}
    assert set(by) == {"GPU: Tesla T4", next(k for k in by if k.startswith("CPU"))}
    assert by["GPU: Tesla T4"]["GPU peak TFLOP/s"] == 65.0 and by["GPU: Tesla T4"]["share of peak"].endswith("%")


def test_week4_executes_its_gpu_rows_fp16_route_and_gpu_claims(smoke_course, records, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_PROFILE", SMOKE.name)
    cpu = store.measured("week4/routes", week4.routes_record, profile=SMOKE, device="cpu", run_on="cpu")
    placement = store.measured("week4/placement", week4.placement_record, profile=SMOKE, device="cpu",
                                 route="onnx-int8-quint8", requested="cuda")
    # the fp16 route, measured for real on this CPU: lab.quantize builds and times it the same way on any device
    fp16 = quantize.ROUTES["pytorch-fp16"]
    monkeypatch.setitem(quantize.ROUTES, "pytorch-fp16", fp16.__class__(**{**fp16.__dict__, "devices": ("cpu",)}))
    model, tokenizer = train.finetuned(SMOKE)
    half = quantize.compare_routes(model.cpu().eval(), tokenizer, SMOKE, "cpu", ["pytorch-fp16"])
    assert show4.route_row({"result": half}, "pytorch-fp16")["status"] == "ok"
    gpu = synthetic_gpu(cpu)
    gpu["result"]["routes"] = [r for r in gpu["result"]["routes"] if r["route"] != "pytorch-fp16"] + \
        _to_cuda([r for r in half["routes"] if r["route"] == "pytorch-fp16"])
    store_synthetic(gpu, records)
    store_synthetic(synthetic_gpu(placement), records)
    # every latency comes from latency/variants: its GPU twin gets the fp16 route's rows, timed for real on the CPU
    lat = store.measured("latency/variants", latency.variants_record, profile=SMOKE, device="cpu", run_on="cpu")
    fp16_rows = variants.time_models({variants.FULL: (model.cpu().eval(), tokenizer, ("pytorch-fp16",))}, SMOKE,
                                    "cpu")["rows"]
    assert [r["variant"] for r in fp16_rows] == ["full/pytorch-fp16"] * len(SMOKE.bench_batch_sizes)
    gpu_lat = synthetic_gpu(lat)
    gpu_lat["result"]["rows"] += _to_cuda(fp16_rows)
    store_synthetic(gpu_lat, records)

    md = render_smoke("course/04-quantization.qmd", smoke_course, records, tmp_path)["result"]["markdown"]
    assert ".cell-output-error" not in md
    assert "No GPU record exists yet" not in md              # the page took its GPU branch
    assert "not measured: no cuda record" not in md          # the Kaggle GPU deployment has its verdict
    assert "GPU: Tesla T4" in md                             # GPU rows, labelled with the GPU's name
    assert "pytorch-fp16" in md


def test_week6_ships_a_pick_for_the_kaggle_gpu_from_a_gpu_latency_record(smoke_course, records, tmp_path):
    lat = store.measured("latency/variants", latency.variants_record, profile=SMOKE, device="cpu", run_on="cpu")
    gpu_lat = synthetic_gpu(lat)
    # PyTorch's dynamic int8 has no CUDA kernels: a GPU run has no such rows, and the page must say so
    gpu_lat["result"]["rows"] = [r for r in gpu_lat["result"]["rows"] if r["route"] != "pytorch-int8"]
    why = quantize.skip_reason("pytorch-int8", "cuda", SMOKE)           # what time_models records on a GPU
    gpu_lat["result"]["skipped"] = [{"model": variants.FULL, "route": "pytorch-int8", "reason": why}]
    store_synthetic(gpu_lat, records)

    freeze = render_smoke("course/06-verification.qmd", smoke_course, records, tmp_path)
    md = freeze["result"]["markdown"]
    assert ".cell-output-error" not in md
    assert "does not have yet" not in md                     # the page took its GPU branch
    kaggle = [line for line in md.splitlines() if line.startswith("| Kaggle GPU") and "GPU: Tesla T4" in line]
    assert len(kaggle) == 1                                  # one recommendation row, named for the T4
    assert f"Not timed there, so not candidates: full fine-tune, PyTorch int8 ({why})" in md   # the record's reason
    shown = [r for r in freeze["lab"]["records"] if r["name"] == "latency/variants"]
    assert {r["hardware"] for r in shown} == {"cuda-tesla-t4", store.hardware_key("cpu", lat["provenance"])}
    assert any(r.get("synthetic") for r in shown)            # so lab check refuses to publish this page


def test_capstone_gives_the_gpu_deployment_the_gpu_memory_as_budget(records):
    lat = store.measured("latency/variants", latency.variants_record, profile=SMOKE, device="cpu", run_on="cpu")
    gpu_lat = synthetic_gpu(lat)
    rows = [{"variant": "big", "accuracy": 0.9, "size_mb": 1000.0, "latency": {32: _ms(10)}, "source": "x"},
            {"variant": "small", "accuracy": 0.9, "size_mb": 10.0, "latency": {32: _ms(50)}, "source": "x"}]
    from lab import capstone
    (pick,) = capstone.picks(rows, gpu_lat)
    assert pick["deployment"] == "Kaggle GPU" and pick["measured on"] == "GPU: Tesla T4"
    assert pick["ship"] == "big" and pick["fit the budget"] == "2 of 2"     # 1 GB is 6% of 14.7 GiB: it fits
    gpu_lat["provenance"]["gpu"]["memory_gb"] = 8.0                          # 12% of 8 GiB: it does not
    assert capstone.picks(rows, gpu_lat)[0]["ship"] == "small"


def _ms(median: float) -> dict:
    return {"median_ms": median, "p10_ms": median * 0.95, "p90_ms": median * 1.05}
