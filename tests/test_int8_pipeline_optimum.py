"""benchmarks/optimum_offline.py: optimum's export and quantization tried offline in throwaway environments. Its
note (benchmarks/results/optimum.md) is the results file in words, and the steps record a failure, not a crash."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import optimum_offline  # noqa: E402


def test_the_committed_note_is_the_committed_results_in_words():
    results = json.loads(optimum_offline.RESULTS.read_text())
    assert optimum_offline.NOTE.read_text() == optimum_offline.note(results), \
        "benchmarks/results/optimum.md is out of date: run python benchmarks/optimum_offline.py"
    assert [s["setup"] for s in results["setups"]] == list(optimum_offline.SETUPS)


def test_without_optimum_every_import_fails_with_its_error_and_nothing_that_needs_it_runs(tmp_path):
    # the course's own environment has no optimum: the control that the steps say so instead of crashing
    steps = {s["step"]: s for s in optimum_offline.child(tmp_path)["steps"]}
    assert steps["import optimum.exporters.onnx"]["status"] == "failed"
    assert steps["import optimum.exporters.onnx"]["reason"].startswith("ModuleNotFoundError: No module named")
    assert steps["export"] == {"step": "export", "status": "skipped", "reason": "needs import optimum.exporters.onnx"}
    assert [s["status"] for s in steps.values()][2:] == ["skipped"] * 4


def test_a_wrapped_import_error_is_reported_by_its_innermost_cause():
    try:
        try:
            raise ImportError("cannot import name 'get_parameter_dtype'")
        except ImportError as inner:
            raise ModuleNotFoundError("Could not import module 'main_export'") from inner
    except ModuleNotFoundError as outer:
        assert optimum_offline.first_line(optimum_offline.root_cause(outer)) == (
            "ImportError: cannot import name 'get_parameter_dtype'")


def test_the_note_names_the_first_failure_without_local_paths_and_a_full_run_by_its_drift():
    base = {"installs": [{"pip_conflicts": []}],
            "versions": {"optimum": "2.3.0", "optimum-onnx": "0.1.0", "transformers": "5.24.0", "onnxruntime": None}}
    broke = {**base, "steps": [{"step": "import optimum.exporters.onnx", "status": "failed", "cause": "",
                                "reason": "ImportError: cannot import name 'x' from 'transformers' (/a/b/__init__.py)"},
                               {"step": "export", "status": "skipped", "reason": "needs import"}]}
    assert optimum_offline.outcome(broke) == (
        "optimum 2.3.0, optimum-onnx 0.1.0, transformers 5.24.0: import optimum.exporters.onnx fails with "
        "`ImportError: cannot import name 'x' from 'transformers'`, and nothing that needs it runs")
    ran = {**base, "steps": [{"step": "run int8 ONNX", "status": "ok", "reason": "", "max_abs_diff": 0.012,
                              "max_abs_logit": 0.039, "same_predictions": 8, "n": 8}]}
    assert optimum_offline.outcome(ran).endswith(
        "every step ran (export, int8 quantization, both models run); int8 logits within 0.012 of PyTorch fp32 "
        "(largest fp32 logit 0.039), 8 of 8 predictions the same")
