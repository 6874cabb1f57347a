"""A GPU result on a page needs a cuda-* record behind it (lab.site.gpu_claims, run by `lab check`)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lab.site import check_published, gpu_claims

CLAIM = "On the T4, ONNX Runtime int8 ran 12x slower than fp32."
ORIGIN = f"""::: {{.callout-note}}
## {gpu_claims.ORIGIN_TITLE}

In an earlier run of this course, int8 made ModernBERT-base 4x smaller and, on the GPU, 12x slower.
:::
"""


def _site(tmp_path: Path, markdown: str, cuda_record: bool = False) -> Path:
    """A one-page site whose freeze lists the records the page showed: week 4's CPU record, and a T4 one if asked."""
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "04-quantization.qmd").write_text("A page.\n")
    shown = []
    folder = tmp_path / "course" / "measurements" / "week4" / "routes"
    folder.mkdir(parents=True)
    for hardware in ["cpu-some-cpu-2c"] + (["cuda-tesla-t4"] if cuda_record else []):
        (folder / f"{hardware}.json").write_text("{}")
        shown.append({"name": "week4/routes", "hardware": hardware,
                      "sha256": hashlib.sha256(b"{}").hexdigest()})
    entry = tmp_path / "_freeze" / "course" / "04-quantization" / "execute-results"
    entry.mkdir(parents=True)
    (entry / "html.json").write_text(json.dumps({"hash": "x", "result": {"markdown": markdown},
                                                 "lab": {"records": shown}}))
    return tmp_path


def test_a_gpu_result_on_a_page_with_no_cuda_record_is_flagged_by_lab_check(tmp_path):
    problems = check_published(_site(tmp_path, f"Some prose.\n\n{CLAIM}\n"))
    assert len(problems) == 1
    assert problems[0].startswith("course/04-quantization.qmd: states a GPU result with no cuda-* record")
    assert "12x slower" in problems[0] and gpu_claims.ORIGIN_TITLE in problems[0]


def test_the_same_sentence_passes_once_the_page_showed_a_cuda_record(tmp_path):
    assert check_published(_site(tmp_path, CLAIM, cuda_record=True)) == []


def test_the_labelled_origin_story_passes_without_a_gpu_record(tmp_path):
    assert check_published(_site(tmp_path, f"The page.\n\n{ORIGIN}\nAfter it.\n")) == []


def test_the_origin_story_outside_its_callout_is_flagged():
    unlabelled = ORIGIN.replace(gpu_claims.ORIGIN_TITLE, "A story")
    assert gpu_claims.gpu_result_sentences(unlabelled) == [
        "In an earlier run of this course, int8 made ModernBERT-base 4x smaller and, on the GPU, 12x slower."]


def test_questions_suppositions_code_and_tables_state_no_gpu_result():
    md = "\n\n".join([
        "Is int8 faster on a T4?",
        "On a GPU the same rule would pick another variant, if int8 ran slower there.",
        "```python\n# on the GPU int8 ran 12x slower\n```",
        "| hardware | speedup |\n|---|---|\n| GPU: Tesla T4 | 0.08x |",
        "On a CPU, int8 ran 2.1x faster.",
    ])
    assert gpu_claims.gpu_result_sentences(md) == []


def test_a_modal_excuses_only_its_own_clause():
    md = "On a GPU, week 4 found the int8 model slower than fp32, so the same rule would pick another variant."
    assert gpu_claims.gpu_result_sentences(md) == [md]


def test_a_sentence_does_not_run_across_a_heading_or_list_item():
    md = "Fits the 40-minute T4 budget\n\n## Results\n\n1. The model ran 3x faster on this CPU."
    assert gpu_claims.gpu_result_sentences(md) == []


def test_a_cuda_record_the_page_did_not_show_backs_nothing(tmp_path):
    site = _site(tmp_path, CLAIM)
    other = site / "course" / "measurements" / "week4" / "routes" / "cuda-tesla-t4.json"
    other.write_text("{}")               # a GPU record exists, but this page's freeze does not list it
    assert len(check_published(site)) == 1
