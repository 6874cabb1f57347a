"""Week 6's record: accuracy and size of the variants no earlier week measured (latency: lab.recipes.latency).

    measured("week6/variants", week6.variants_record, profile=profile, device="cpu", temperature=T, alpha=a)

The merged LoRA model in PyTorch fp32, and week 5's best student in PyTorch fp32 and ONNX Runtime int8, each
through week 4's harness (lab.quantize.compare_routes). The rules that compare the variants are lab.capstone.
"""
from __future__ import annotations

from lab import distill, lora, quantize


def variants_record(profile, temperature: float, alpha: float) -> dict:
    """Accuracy and size of what the earlier weeks did not measure (no latency: lab.recipes.latency). The student is week 5's
    best (its settings are this record's config, so a different best student re-measures)."""
    lora_model, tokenizer = lora.adapted(profile)
    merged = lora_model.merge_and_unload().cpu().eval()
    student, student_tok = distill.student(profile, distill.Settings(temperature, alpha))
    return {"lora_merged": quantize.compare_routes(merged, tokenizer, profile, "cpu", [quantize.REFERENCE]),
            "student": quantize.compare_routes(student.cpu().eval(), student_tok, profile, "cpu",
                                               [quantize.REFERENCE, quantize.INT8])}
