"""lab.runtime: placement from ORT profiles, and fallbacks that cannot pass silently.

Fixtures (tests/fixtures/ort/README.md): a real profile ORT wrote on this CPU for an int8 tiny-bert with CUDA asked
for, and a profile built in ORT's format that mixes CUDA and CPU nodes.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from lab import runtime
from lab.runtime import CPU, CUDA, FallbackError, FallbackWarning

FIXTURES = Path(__file__).parent / "fixtures" / "ort"
REAL = FIXTURES / "cpu_profile_quint8_tiny_bert.json"
MIXED = Path(runtime.__file__).parent / "resources" / "mixed_cuda_cpu_profile.json"   # shipped for week 4
GPU_WORKS = torch.cuda.is_available()


def _relu_model(path: Path, ir_version: int | None = None) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    if ir_version is None:
        runtime.pin_ir_version(model)       # onnx writes an IR version newer than onnxruntime reads
    else:
        model.ir_version = ir_version
    onnx.save(model, str(path))
    return path


# ---------------------------------------------------------------- parsing

def test_real_cpu_profile_parses_every_kernel_event():
    events = runtime.node_events(REAL)
    raw = json.loads(REAL.read_text())
    assert len(events) == 30                                # one kernel event per op type, session events skipped
    assert len(raw) == 34
    assert {e.provider for e in events} == {CPU}
    ops = {e.op for e in events}
    assert {"DynamicQuantizeLinear", "MatMulIntegerToFloat", "LayerNormalization", "Shape"} <= ops
    dql = next(e for e in events if e.op == "DynamicQuantizeLinear")
    assert dql.outputs == ["uint8", "float", "uint8"]      # the uint8 activations the CUDA provider cannot take


def test_real_cpu_profile_on_a_cpu_request_is_clean():
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # any warning fails the test
        placed = runtime.placement(REAL, requested=[CPU], active=[CPU])
    assert placed.ok and placed.fell_back == []
    assert all(counts == {CPU: 1} for counts in placed.by_op.values())
    assert placed.time_us[CPU] == sum(e["dur"] for e in json.loads(REAL.read_text()) if e["cat"] == "Node")


def test_real_profile_with_cuda_requested_is_a_whole_session_fallback():
    with pytest.warns(FallbackWarning, match="whole-session fallback"):
        placed = runtime.placement(REAL, requested=[CUDA, CPU], active=[CPU])
    assert placed.whole_session_fallback and not placed.ok
    assert placed.summary().startswith("CPU only")
    with pytest.raises(FallbackError, match="DynamicQuantizeLinear"):
        runtime.placement(REAL, requested=[CUDA, CPU], active=[CPU], strict=True)


def test_mixed_profile_names_the_ops_that_fell_back():
    with pytest.warns(FallbackWarning) as caught:
        placed = runtime.placement(MIXED, requested=[CUDA, CPU], active=[CUDA, CPU])
    assert placed.per_node_fallback and not placed.whole_session_fallback
    # Shape and the int64 Gather ran on the CPU on purpose (shape arithmetic): not a fallback.
    assert placed.fell_back == ["DynamicQuantizeLinear", "MatMulInteger"]
    assert placed.by_op["Gather"] == {CPU: 1, CUDA: 1}
    assert placed.by_op["MatMulInteger"] == {CPU: 2}
    message = str(caught[0].message)
    assert "DynamicQuantizeLinear" in message and "MatMulInteger" in message
    # the table marks exactly the fallen-back ops, and lists them first
    rows = placed.rows()
    assert [r["op"] for r in rows if r["fell back"]] == ["DynamicQuantizeLinear", "MatMulInteger"]
    assert [r["op"] for r in rows[:2]] == ["DynamicQuantizeLinear", "MatMulInteger"]


def test_strict_mode_error_lists_the_fallen_back_ops():
    with pytest.raises(FallbackError) as err:
        runtime.placement(MIXED, requested=[CUDA, CPU], active=[CUDA, CPU], strict=True)
    assert "per-node fallback" in str(err.value)
    assert "DynamicQuantizeLinear, MatMulInteger" in str(err.value)
    assert "Shape" not in str(err.value)


def test_kernel_time_shares_add_up():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        placed = runtime.placement(MIXED, requested=[CUDA, CPU], active=[CUDA, CPU])
    built = json.loads(MIXED.read_text())
    for provider in (CPU, CUDA):
        assert placed.time_us[provider] == sum(e["dur"] for e in built
                                               if e["cat"] == "Node" and e["args"]["provider"] == provider)


def test_placement_round_trips_through_a_record():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        placed = runtime.placement(MIXED, requested=[CUDA, CPU], active=[CUDA, CPU])
    again = runtime.Placement.from_dict(json.loads(json.dumps(placed.to_dict())))
    assert again.to_dict() == placed.to_dict()


# ---------------------------------------------------------------- sessions on this machine

@pytest.mark.skipif(GPU_WORKS, reason="on a GPU machine CUDA may really load; this checks the CPU-only case")
def test_asking_for_cuda_here_is_reported_never_silent(tmp_path):
    path = _relu_model(tmp_path / "relu.onnx")
    with pytest.warns(FallbackWarning, match="Likely cause"):
        sess = runtime.session(path, "cuda")
    assert sess.get_providers() == [CPU]
    with pytest.raises(FallbackError, match="whole-session fallback"):
        runtime.session(path, "cuda", strict=True)
    # and the profiled route reports it too, with the cause
    feeds = {"x": np.array([-1.0, 2.0], dtype=np.float32)}
    with pytest.warns(FallbackWarning):
        placed, events = runtime.profile_placement(path, feeds, "cuda")
    assert placed.whole_session_fallback and placed.by_op == {"Relu": {CPU: 1}}
    assert len(events) == 1


def test_cpu_session_runs_and_is_clean(tmp_path):
    path = _relu_model(tmp_path / "relu.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        placed, _ = runtime.profile_placement(path, {"x": np.array([-1.0, 2.0], dtype=np.float32)}, "cpu")
    assert placed.ok and placed.active == [CPU]


@pytest.mark.skipif(GPU_WORKS, reason="the no-GPU diagnosis")
def test_likely_cause_without_a_gpu_says_so():
    import onnxruntime as ort
    cause = runtime.likely_cause()
    assert ort.__version__ in cause
    if runtime.cuda_requirement() is not None:
        assert "torch.cuda.is_available() is False" in cause


def test_ir_version_is_pinned_to_what_onnxruntime_loads(tmp_path):
    import onnxruntime as ort
    newest = runtime.max_ir_version()
    assert 8 <= newest <= onnx.IR_VERSION
    model = onnx.load(str(_relu_model(tmp_path / "new.onnx", ir_version=onnx.IR_VERSION)))
    runtime.pin_ir_version(model)
    assert model.ir_version == newest
    ort.InferenceSession(model.SerializeToString(), providers=[CPU])     # loads: no exception
    if newest < onnx.IR_VERSION:                                          # the reason the pin exists
        model.ir_version = newest + 1
        with pytest.raises(Exception):
            ort.InferenceSession(model.SerializeToString(), providers=[CPU])


def test_unknown_device_is_an_error_that_says_what_is_valid():
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        runtime.providers_for("gpu")
