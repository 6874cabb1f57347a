"""Week 5's record: the teacher, a student on labels alone, and the students distilled from the teacher.

    measured("week5/distill", week5.distill_record, profile=profile)

The mechanism (the loss, the cached teacher logits, each student's run, which week 6 reuses: lab.distill.student) is
lab.distill. Every student has the same architecture, data, epochs, schedule and seed; only the loss differs. Their
latency is not measured here: lab.recipes.latency times the teacher and every student in one interleaved run.
Each row also carries its validation accuracy, on which the pages pick the best student (lab.capstone.best_student:
the test set only reports), and "correct", '0'/'1' per test snippet in test-set order, which the paired accuracy
test reads (lab.capstone.accuracy_test).
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from lab import data, distill, models, train


def distill_record(profile) -> dict:
    """The teacher (week 1's model), the student on labels only, and the distilled students of the sweep."""
    device = train.default_device()
    teacher, tokenizer = train.finetuned(profile, device=device)
    splits = data.load_splits(profile)
    # every model is scored on the teacher tokenizer's encoding (each profile's student shares the tokenizer)
    test_enc = data.encode(tokenizer, splits.test, profile.max_length)
    val_enc = data.encode(tokenizer, splits.validation, profile.max_length)
    logits = distill.teacher_logits(profile, device=device)

    def scored(name, model) -> dict:
        """describe()'s row, with the validation accuracy and "correct" per test snippet."""
        test = train.evaluate(model, test_enc, device=device, logits=True)
        right = test.pop("logits").argmax(-1).numpy() == np.asarray(test_enc.labels)
        val = train.evaluate(model, val_enc, device=device)["accuracy"]
        return {**distill.describe(name, model, test), "val_accuracy": val,
                "correct": "".join("1" if r else "0" for r in right)}

    rows = [scored("teacher (week 1)", teacher)]
    for settings in (distill.LABELS_ONLY, *distill.SWEEP):
        model, tok = models.load(distill.student_key(profile), seed=profile.seed)
        history = train.train(model, tok, splits, distill.train_profile(profile, settings), device=device,
                              checkpoint_dir=distill.run_dir(profile, settings),
                              checkpoint_every=train.checkpoint_every(profile),
                              loss_fn=distill.loss_fn(logits, settings))
        rows.append({**scored(distill.label(settings), model), "settings": asdict(settings),
                     "train_s": history["clock"]["train_s"], "samples_per_s": history["samples_per_s"],
                     "loss": history["loss"]})
    return {"student": distill.student_key(profile), "data": splits.sizes(), "rows": rows,
            "baseline": data.majority_baseline(splits.train, splits.test)}
