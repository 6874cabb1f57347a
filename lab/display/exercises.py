"""Checkers for the weeks' exercises: give your answer, get right or wrong, and why.

    from lab.display import exercises
    exercises.check_steps(250, examples=4000, batch_size=32, epochs=2)
    # Not yet: 4,000 examples in batches of 32 is 125 steps per epoch (the last batch may be short) ...

Each checker computes the expected answer with the same lab code the page measured with (lab.errors.ece,
lab.distill.loss, lab.capstone.pareto ...), so an exercise cannot drift from the course. It returns a `Verdict`,
which a notebook shows as a sentence and which is truthy when the answer is right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Verdict:
    right: bool
    why: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return f"{'Right' if self.right else 'Not yet'}: {self.why}"

    def _repr_markdown_(self) -> str:             # how a notebook cell shows it
        return f"**{'Right' if self.right else 'Not yet'}.** {self.why}"


def unanswered(answer, what: str = "your answer") -> Verdict | None:
    """A 'fill in' verdict for a placeholder left as it was (None or ...), else None: the checker goes on."""
    if answer is None or answer is Ellipsis:
        return Verdict(False, f"fill in your answer: replace the placeholder {answer!r} with {what}, then run the "
                              f"check again.")
    return None


def check_number(answer: float, expected: float, *, rel: float = 0.02, what: str = "the answer",
                 hint: str = "") -> Verdict:
    """Right when `answer` is within `rel` (a share: 0.02 = 2%) of `expected`."""
    if (blank := unanswered(answer, what)) is not None:
        return blank
    try:
        answer = float(answer)
    except (TypeError, ValueError):
        return Verdict(False, f"{answer!r} is not a number; give {what} as a number, e.g. {expected:.3g}")
    close = math.isclose(answer, expected, rel_tol=rel, abs_tol=1e-12)
    shown = f"{what} is {expected:.4g}, you gave {answer:.4g} (tolerance {100 * rel:g}%)"
    return Verdict(True, shown + ".") if close else Verdict(False, shown + (f". {hint}" if hint else "."))


# ---------------------------------------------------------------- week 1

def check_steps(answer: int, *, examples: int, batch_size: int, epochs: int) -> Verdict:
    """Optimizer steps of a run: one per batch, ceil(examples / batch_size) batches per epoch."""
    if (blank := unanswered(answer, "the number of optimizer steps")) is not None:
        return blank
    per_epoch = math.ceil(examples / batch_size)
    expected = per_epoch * epochs
    if answer == expected:
        return Verdict(True, f"{examples:,} examples in batches of {batch_size} is {per_epoch} steps per epoch, "
                             f"times {epochs} epochs: {expected:,} steps.")
    if answer == examples // batch_size * epochs:
        why = "the last, shorter batch of each epoch is a step too (round up, not down)"
    elif answer == per_epoch:
        why = f"that is one epoch; the run has {epochs}"
    else:
        why = "one optimizer step per batch: count the batches in an epoch, then multiply by the epochs"
    return Verdict(False, f"{answer!r} is not {expected:,}: {why}.")


def padded_tokens(lengths: list[int], batch_size: int, seed: int = 0, group_by_length: bool = True) -> int:
    """Tokens the model computes in one epoch: every batch padded to its longest snippet (lab.data.collate)."""
    from lab import data
    order = data.batch_order(lengths, batch_size, seed, 0, group_by_length=group_by_length)
    return sum(len(b) * max(lengths[i] for i in b) for b in order)


def check_padding_ratio(answer: float, lengths: list[int], batch_size: int, seed: int = 0) -> Verdict:
    """How many times more tokens an epoch computes without length grouping than with it."""
    ratio = padded_tokens(lengths, batch_size, seed, False) / padded_tokens(lengths, batch_size, seed, True)
    return check_number(answer, ratio, rel=0.02, what="padded tokens without grouping / with grouping",
                        hint="Count, per batch, batch size x its longest snippet, for both batch orders "
                             "(lab.data.batch_order with group_by_length=False and True).")


# ---------------------------------------------------------------- week 2

def check_lora_params(answer: int, *, layers: int, hidden: int, r: int, targets: int) -> Verdict:
    """LoRA's A and B on `targets` square (hidden x hidden) projections in each of `layers` layers: the head and
    any modules_to_save not counted."""
    if (blank := unanswered(answer, "the number of weights LoRA adds")) is not None:
        return blank
    per_matrix = r * hidden + hidden * r          # A is (r, hidden), B is (hidden, r)
    expected = layers * targets * per_matrix
    if answer == expected:
        return Verdict(True, f"{layers} layers x {targets} projections x (A: {r}x{hidden} + B: {hidden}x{r}) "
                             f"= {expected:,} weights.")
    if answer == expected // 2:
        why = "you counted one of the two matrices; LoRA trains both A and B"
    elif answer == layers * targets * hidden * hidden:
        why = "that is the frozen W itself; LoRA trains only its low-rank correction B A"
    else:
        why = f"each adapted matrix gets A ({r} x {hidden}) and B ({hidden} x {r}), in every layer"
    return Verdict(False, f"{answer!r} is not {expected:,}: {why}.")


# ---------------------------------------------------------------- week 3

def check_ece(answer: float, p_fresh, labels, n_bins: int = 10) -> Verdict:
    """The expected calibration error of predictions (probability of 'fresh', true label), by lab.errors.ece."""
    from lab import errors
    p, y = np.asarray(p_fresh, dtype=float), np.asarray(labels, dtype=int)
    m = errors.Predictions("yours", y, p, np.zeros(len(y), dtype=int), [""] * len(y))
    return check_number(answer, errors.ece(m, n_bins), rel=0.02, what="the ECE",
                        hint="Per bin of the predicted class's probability (0.5-0.6, ..., 0.9-1.0): |accuracy - mean "
                             "confidence|, weighted by the bin's share of the predictions. A 'rotten' prediction at "
                             "p(fresh) = 0.2 has confidence 0.8.")


def check_bonferroni(answer: float, p_value: float, tests: int) -> Verdict:
    """The p-value of the best of `tests` hypotheses, corrected for having tried them all (Bonferroni)."""
    if (blank := unanswered(answer, "the corrected p-value")) is not None:
        return blank
    return check_number(answer, min(1.0, p_value * tests), rel=0.01, what=f"p = {p_value:g} after {tests} tests",
                        hint="Multiply by the number of patterns tried (capped at 1): with 20 tries, one "
                             "'p < 0.05' is expected by chance.")


def validation_nll(temperature: float, logits, labels) -> float:
    """Mean cross-entropy (natural log) of softmax(logits / T) against the labels: what temperature scaling
    minimises on the validation split."""
    from scipy.special import log_softmax
    z = np.asarray(logits, dtype=float) / float(temperature)
    y = np.asarray(labels, dtype=int)
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean())


T_BOUNDS = (0.05, 20.0)      # the search range: a T outside it means logits near zero or a broken model


def best_temperature(logits, labels) -> float:
    """The T in T_BOUNDS that minimises validation_nll, by scipy's bounded scalar search on log T (the NLL of a
    temperature is smooth and, for T > 0, has one minimum)."""
    from scipy.optimize import minimize_scalar
    lo, hi = np.log(T_BOUNDS)
    found = minimize_scalar(lambda log_t: validation_nll(np.exp(log_t), logits, labels), bounds=(lo, hi),
                            method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def check_temperature(answer: float, logits, labels, *, tol: float = 1e-3) -> Verdict:
    """Right when the validation NLL at the student's T is within `tol` nats of its minimum (the NLL is flat near
    the optimum, so a T a few percent off is as good as the exact one)."""
    if (blank := unanswered(answer, "your temperature T (a number > 0)")) is not None:
        return blank
    try:
        t = float(answer)
    except (TypeError, ValueError):
        return Verdict(False, f"{answer!r} is not a number; give T as a number > 0, e.g. 1.5")
    if not t > 0:
        return Verdict(False, f"T = {t:g}: a temperature must be > 0 (T <= 0 flips or breaks the softmax).")
    best = best_temperature(logits, labels)
    mine, least, at_one = (validation_nll(x, logits, labels) for x in (t, best, 1.0))
    shown = (f"validation NLL {mine:.4f} at your T = {t:.3g}; the least is {least:.4f} at T = {best:.3g} "
             f"({at_one:.4f} at T = 1)")
    if mine <= least + tol:
        return Verdict(True, shown + ".")
    if abs(math.log(best)) > 0.1 and abs(math.log(t) + math.log(best)) < abs(math.log(t) - math.log(best)):
        why = "your T is nearer 1 / T*: divide the logits by T, do not multiply them"
    elif t > best:
        why = "T too high: the probabilities are pulled too close to 0.5"
    else:
        why = "T too low: the probabilities are pushed too close to 0 and 1"
    return Verdict(False, f"{shown}: {why}. Minimise the NLL over T on the validation logits (e.g. "
                          f"scipy.optimize.minimize_scalar).")


def check_accuracy_unchanged(answer: float, logits, labels) -> Verdict:
    """The test accuracy after temperature scaling: the argmax of logits / T for any T > 0, so the accuracy of the
    unscaled logits."""
    if (blank := unanswered(answer, "the test accuracy at your T (a share, e.g. 0.83)")) is not None:
        return blank
    y = np.asarray(labels, dtype=int)
    expected = float((np.asarray(logits).argmax(axis=1) == y).mean())
    return check_number(answer, expected, rel=0.5 / (len(y) * max(expected, 1e-9)), what="the test accuracy",
                        hint="Dividing both logits of a snippet by the same T > 0 keeps their order, so every "
                             "prediction, and the accuracy, stays as it was at T = 1.")


# ---------------------------------------------------------------- week 4

def check_cpu_share(answer: float, trace, provider: str = "CPUExecutionProvider") -> Verdict:
    """The share (0 to 1) of the node-kernel time of an ORT profile that `provider` took (lab.profiling)."""
    from lab import profiling
    if (blank := unanswered(answer, "the CPU's share of the kernel time, between 0 and 1")) is not None:
        return blank
    events = profiling.load_trace(trace)
    expected = profiling.share(events, provider)
    kernels = profiling.kernel_events(events)
    by_count = sum(e["args"]["provider"] == provider for e in kernels) / len(kernels)
    verdict = check_number(answer, expected, rel=0.01, what=f"the {provider.replace('ExecutionProvider', '')} "
                                                            f"share of the kernel time")
    if verdict or not isinstance(answer, (int, float)):
        return verdict
    if math.isclose(answer / 100, expected, rel_tol=0.01):
        hint = "that is a percentage; give the share between 0 and 1"
    elif math.isclose(answer, by_count, rel_tol=0.01):
        hint = "that is the share of node calls; weigh each call by its 'dur' (microseconds)"
    else:
        hint = ("sum 'dur' over the kernel events only (cat 'Node', name ending in '_kernel_time'), per "
                "args['provider']; session events such as 'session_initialization' are no kernel's time")
    return Verdict(False, f"{verdict.why.rstrip('.')}: {hint}.")


# ---------------------------------------------------------------- week 5

def check_distill_loss(answer: float, student, teacher, label: int, temperature: float, alpha: float) -> Verdict:
    """lab.distill.loss on one example's logits (lists of class scores) and its label."""
    import torch
    from lab import distill
    expected = float(distill.loss(torch.tensor([student], dtype=torch.float64),
                                  torch.tensor([teacher], dtype=torch.float64), torch.tensor([label]),
                                  distill.Settings(temperature, alpha)))
    return check_number(answer, expected, rel=0.01, what="the distillation loss",
                        hint=f"alpha x T^2 x KL(teacher || student) at temperature T, plus (1 - alpha) x the "
                             f"cross-entropy at T = 1; did you forget the T^2 = {temperature ** 2:g}, or use natural "
                             f"logarithms?")


# ---------------------------------------------------------------- week 6

def why_beaten(winner: dict, loser: dict, batch: int) -> str:
    """Why lab.capstone.beats(winner, loser, batch) holds, in words; a measured accuracy lead the paired test
    cannot see is named, since it is the usual reason a variant is wrongly kept on the front."""
    from lab import capstone
    if capstone.faster(winner, loser, batch):
        if loser["accuracy"] > winner["accuracy"]:
            return (f"faster beyond the noise; {loser['variant']}'s higher accuracy, {loser['accuracy']:.3f} against "
                    f"{winner['accuracy']:.3f}, is not distinguishable by McNemar's paired test")
        return "faster beyond the noise, and not less accurate"
    p = capstone.accuracy_test(winner, loser)["p"]
    return f"more accurate by McNemar's paired test (p = {p:.2g}), and not slower beyond the noise"


def check_pareto(answer, rows: list[dict], batch: int) -> Verdict:
    """The variants on the accuracy/latency Pareto front at `batch` (lab.capstone.pareto)."""
    from lab import capstone
    if (blank := unanswered(answer, "a list of variant names")) is not None:
        return blank
    if isinstance(answer, str):
        answer = [answer]
    front, given = set(capstone.pareto(rows, batch)), set(answer)
    if given == front:
        return Verdict(True, f"the front at batch {batch} is {', '.join(sorted(front))}.")
    by = {r["variant"]: r for r in rows}
    unknown = sorted(given - set(by))
    if unknown:
        return Verdict(False, f"no variant is called {', '.join(map(repr, unknown))}; the variants are "
                              f"{', '.join(sorted(by))}.")
    reasons = []
    for v in sorted(given - front):
        beater = next(o for o in rows if o["variant"] != v and capstone.beats(o, by[v], batch))
        reasons.append(f"{v} is beaten by {beater['variant']} ({why_beaten(beater, by[v], batch)})")
    for v in sorted(front - given):
        reasons.append(f"{v} is missing: no variant beats it")
    return Verdict(False, "; ".join(reasons) + ".")
