"""The latency record: one latency per (variant, runtime, batch, hardware), every model the course compares timed in
one run (lab.variants.time_models).

    rec = measured("latency/variants", latency.variants_record, profile=profile, device=device, run_on=device)

Pages 4, 5 and 6 read every latency from this record and nowhere else (lab.display.latency).

The models come from the weeks' own runs. The records that train them (week2/lora, week5/distill) are asked for
first, through `measured`, so on a cold run the first page that needs latency trains what is missing, once.
"""
from __future__ import annotations

from lab import distill, lora, quantize, train, variants
from lab.recipes import week2, week5
from lab.record.store import measured


def full_model(profile) -> dict[str, tuple[object, object, tuple[str, ...]]]:
    """{variants.FULL: (model, tokenizer, routes)}: week 1's model through every week-4 route (benchmarks/inference.py)."""
    full, tokenizer = train.finetuned(profile)
    return {variants.FULL: (full.cpu().eval(), tokenizer, tuple(quantize.ROUTES))}


def _models(profile) -> dict[str, tuple[object, object, tuple[str, ...]]]:
    """name -> (model, tokenizer, routes). Asks for the weeks' records first, so a missing one is made (and its
    models trained) by its own measurement, not a second time here."""
    device = train.default_device()
    measured("week2/lora", week2.lora_record, profile=profile, device=device)
    measured("week5/distill", week5.distill_record, profile=profile, device=device)
    lora_model, lora_tok = lora.adapted(profile)
    out = {**full_model(profile),
           variants.LORA: (lora_model.merge_and_unload().cpu().eval(), lora_tok, (quantize.REFERENCE,))}
    logits = distill.teacher_logits(profile, device=device)
    for settings in variants.STUDENTS:
        student, student_tok = distill.student(profile, settings, device=device, logits=logits)
        out[distill.variant(settings)] = (student.cpu().eval(), student_tok, variants.STUDENT_ROUTES)
    return out


def variants_record(profile, run_on: str = "cpu") -> dict:
    """Every variant's latency on `run_on`, measured in one interleaved run on the same real test batches:
    time_models of every model the course compares."""
    return variants.time_models(_models(profile), profile, run_on)
