"""lab.recipes.int8_pipeline: week 4's int8 pipeline on DeBERTa's architecture, each step recorded as it went, and
the sentence "Picking a model" builds from it (lab.display.scorecard.pipeline_sentence)."""
import pytest
import torch

from lab import config, models
from lab.display import course_time, scorecard
from lab.recipes import int8_pipeline

SMOKE = config.PROFILES["smoke"]


@pytest.fixture(scope="module")
def smoke_result():
    return int8_pipeline.pipeline_record(SMOKE, "tiny-deberta")


def test_deberta_runs_every_step_on_built_in_transformers_code_and_int8_stays_near_fp32(smoke_result):
    r = smoke_result
    assert r["failed"] == [] and all(s["status"] == "ok" for s in r["steps"])
    assert [s["step"] for s in r["steps"]] == ["pytorch fp32", "onnx export", "onnx fp32 session", "quantize qint8",
                                              "onnx qint8 session", "quantize quint8", "onnx quint8 session"]
    assert r["built_in"] and r["code"] == "transformers.models.deberta_v2.modeling_deberta_v2"
    export = int8_pipeline.step_row(r, "onnx fp32 session")
    assert export["max_abs_diff"] < 1e-4 and export["same_predictions"] == export["n"] == int8_pipeline.BATCH
    for w in int8_pipeline.WEIGHTS:
        q = int8_pipeline.step_row(r, f"quantize {w}")
        assert q["ops"].get("MatMulInteger", 0) > 0          # the quantizer really emitted int8 matmuls
        assert q["size_mb"] < int8_pipeline.step_row(r, "onnx export")["size_mb"]
        assert 0 < int8_pipeline.step_row(r, f"onnx {w} session")["max_abs_diff"] < 0.1


def test_an_export_that_fails_is_a_failed_row_with_its_error_and_the_steps_after_it_do_not_run(monkeypatch):
    real = models.load

    def unexportable(key, num_labels=2, seed=0):
        net, tok = real(key, num_labels, seed)
        # a head that computes a Bessel function: fine in PyTorch, but ONNX has no operator for it
        net.classifier.register_forward_hook(lambda m, i, out: out + 0 * torch.special.bessel_j0(out))
        return net, tok
    monkeypatch.setattr(models, "load", unexportable)
    r = int8_pipeline.pipeline_record(SMOKE, "tiny-deberta")
    status = {s["step"]: s["status"] for s in r["steps"]}
    assert status["pytorch fp32"] == "ok" and status["onnx export"] == "failed"
    assert "ONNX export failed" in int8_pipeline.step_row(r, "onnx export")["reason"]
    assert all(status[s] == "skipped" for s in status if s not in ("pytorch fp32", "onnx export"))
    assert int8_pipeline.step_row(r, "quantize qint8")["reason"] == "needs onnx export"
    assert r["failed"] == [s for s in status if s != "pytorch fp32"]


def test_the_page_sentence_says_the_first_failure_with_its_error_and_what_did_not_run():
    result = {"steps": [
        {"step": "pytorch fp32", "status": "ok", "reason": "", "max_abs_logit": 0.01, "distinct_predictions": 1},
        {"step": "onnx export", "status": "failed", "reason": "RuntimeError: no symbolic for XSoftmax"},
        {"step": "onnx fp32 session", "status": "skipped", "reason": "needs onnx export"},
        {"step": "quantize qint8", "status": "skipped", "reason": "needs onnx export"}]}
    assert scorecard.pipeline_sentence(result, 1e-4) == (
        "The pipeline broke at **onnx export**: `RuntimeError: no symbolic for XSoftmax`. Not run, for want of a "
        "failed step's output: onnx fp32 session, quantize qint8. What ran: pytorch fp32.")
    rows = scorecard.pipeline_rows(result)
    assert [r["result"] for r in rows] == ["pass", "FAIL", "skipped", "skipped"]
    assert rows[1]["what it measured"] == "RuntimeError: no symbolic for XSoftmax"


def test_the_page_sentence_when_every_step_ran_gives_the_drift_and_judges_the_export_by_the_tolerance():
    def session(name, diff, same):
        return {"step": name, "status": "ok", "reason": "", "max_abs_diff": diff, "same_predictions": same, "n": 8}
    result = {"steps": [
        {"step": "pytorch fp32", "status": "ok", "reason": "", "max_abs_logit": 0.2, "distinct_predictions": 2},
        session("onnx fp32 session", 5e-7, 8), session("onnx qint8 session", 0.012, 8),
        session("onnx quint8 session", 0.0145, 7)]}
    assert scorecard.pipeline_sentence(result, 1e-4) == (
        "Every step ran. The fp32 export computes PyTorch's logits to within 5e-07 (within the scorecard's "
        "tolerance of 0.0001); the int8 models' logits differ from fp32's by 0.015 at most, against a largest fp32 "
        "logit of 0.2, and 7 of 8 predictions stay the same.")
    assert "(outside the scorecard's tolerance" in scorecard.pipeline_sentence(result, 1e-7)    # the control
    assert scorecard.pipeline_rows(result)[0]["what it measured"] == (
        "largest |logit| 0.2; 2 distinct predictions on the batch")


def test_picking_a_model_counts_the_pipeline_record_among_its_own():
    for profile, model in ((SMOKE, "tiny-deberta"), (config.PROFILES["cpu"], "deberta-v3-base-random")):
        names = course_time.page_records("course/picking-a-model.qmd", profile)
        assert f"int8-pipeline/{model}" in names
        assert [n for n in names if n.startswith("verify/")]        # the scorecard's records are still there


def test_a_weight_the_export_routes_through_a_transpose_is_counted_as_left_in_fp32(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = {n: numpy_helper.from_array(np.ones((4, 4), np.float32), n) for n in ("layer.q_proj.weight",
                                                                            "layer.out.weight")}
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Transpose", ["layer.q_proj.weight"], ["qT"]),
             helper.make_node("MatMul", ["x", "qT"], ["h"]),                    # through a Transpose: counted
             helper.make_node("MatMul", ["h", "h2"], ["a"]),                    # two activations: not a weight
             helper.make_node("MatMul", ["a", "layer.out.weight"], ["y"])]      # a stored weight: counted
    nodes.insert(2, helper.make_node("Relu", ["h"], ["h2"]))
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=list(w.values()))
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert int8_pipeline.float_weight_matmuls(path) == {
        "float_matmuls": 2, "float_weights": 2, "float_weight_kinds": ["out.weight", "q_proj.weight"]}


def test_tiny_deberta_without_shared_attention_keys_leaves_no_weight_in_fp32(smoke_result):
    # the control for the base-size record, whose shared query/key projections reach their MatMuls transposed
    # (tiny's separate position projections act on a constant, so the export folds them: fewer matmuls than layers)
    q = int8_pipeline.step_row(smoke_result, "quantize qint8")
    assert q["float_weights"] == 0 and q["float_weight_kinds"] == []
    assert 0 < q["ops"]["MatMulInteger"] <= smoke_result["linear_layers"]


def test_the_fp32_sentence_names_the_weights_left_in_fp32_or_says_none_were():
    def result(float_weights, kinds, matmuls):
        return {"steps": [{"step": "quantize qint8", "status": "ok", "reason": "", "size_mb": 230.0,
                           "ops": {"DynamicQuantizeLinear": 50, "MatMulInteger": 50}, "float_matmuls": matmuls,
                           "float_weights": float_weights, "float_weight_kinds": kinds}]}
    assert scorecard.pipeline_fp32_sentence(result(24, ["key_proj.weight", "query_proj.weight"], 48)) == (
        "50 MatMuls run in int8, but 24 weight matrices stay in fp32, all of them `key_proj` and `query_proj`: each "
        "feeds 2 MatMuls through a Transpose node of the export, and ORT's dynamic quantizer quantizes a MatMul only "
        "when its weight is a stored tensor.")
    assert scorecard.pipeline_fp32_sentence(result(0, [], 0)) == (
        "Every weight that reaches a MatMul was quantized: 50 MatMulInteger nodes, none left in fp32.")
    assert scorecard.pipeline_fp32_sentence({"steps": [{"step": "quantize qint8", "status": "skipped",
                                                        "reason": "needs onnx export"}]}) == ""
