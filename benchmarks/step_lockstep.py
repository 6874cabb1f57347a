"""Two training loops timed in lockstep: each runs in its own thread and hands a baton to the other after every
optimizer step, so their steps alternate (A, B, A, B, ...) and each pair of steps meets the same machine.

Rows run one after another, a minute apart, drift by several percent on a shared 2-core VM: another process's
burst lands on one row and not the other. Paired steps a second apart share the burst, so the ratio of two loops
that do the same arithmetic comes out near 1 with a spread of a percent or two instead of five.

    steps = lockstep({"lab.train": lambda: train.train(...), "HF Trainer": trainer.train}, first="lab.train")
    steps["lab.train"]   # seconds per step, whole steps only: [0.98, 1.02, ...]

A step's time runs from the loop's optimizer step to its next one, while it holds the baton: the loop's own work
between steps (zero_grad, lr schedule, progress, building the next batch) counts, the other loop's does not. The
time before a loop's first optimizer step (its setup) and after its last (evaluation) is left out.

Both loops draw dropout masks from torch's one global generator, interleaved, so the weights differ from a run on
its own; the arithmetic per step does not. Build the models before calling (in the main thread): two threads
loading checkpoints at once can deadlock.
"""
from __future__ import annotations

import statistics
import threading
import time

from torch.optim.optimizer import register_optimizer_step_post_hook


def lockstep(loops: dict, first: str) -> dict[str, list[float]]:
    """Run the two callables in `loops` step by step, `first` leading each pair; seconds per whole step each."""
    if len(loops) != 2 or first not in loops:
        raise ValueError(f"need two loops and one of them first, got {list(loops)} and first={first!r}")
    names = list(loops)
    other = {names[0]: names[1], names[1]: names[0]}
    baton = threading.Condition()
    state = {"turn": first, "done": set(), "errors": {}}
    held = {name: [] for name in names}          # (start, end) of each stretch holding the baton
    since, whose = {}, {}                         # when each loop took the baton; thread id -> loop

    def take(me):
        with baton:
            baton.wait_for(lambda: state["turn"] == me or other[me] in state["done"])
        since[me] = time.perf_counter()

    def give(me, finished=False):
        held[me].append((since[me], time.perf_counter()))
        with baton:
            if finished:
                state["done"].add(me)
            state["turn"] = other[me]
            baton.notify_all()

    def after_step(optimizer, args, kwargs):
        me = whose.get(threading.get_ident())
        if me is not None:                        # an optimizer stepping outside the two loops is not timed
            give(me)
            take(me)

    def run(me):
        whose[threading.get_ident()] = me
        take(me)
        try:
            loops[me]()
        except BaseException as e:                # let the other loop run on alone, then re-raise in the caller
            state["errors"][me] = e
        finally:
            give(me, finished=True)

    hook = register_optimizer_step_post_hook(after_step)
    try:
        threads = [threading.Thread(target=run, args=(name,), name=f"lockstep: {name}") for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        hook.remove()
    for name, error in state["errors"].items():
        raise RuntimeError(f"{name} failed in lockstep") from error
    # stretch 0: setup and the first step; stretch k: step k+1 whole; the last: after the last step
    return {name: [end - start for start, end in stretches[1:-1]] for name, stretches in held.items()}


def compare(runs: list[dict[str, list[float]]], a: str, b: str) -> dict:
    """Ratio of a's speed to b's (b's seconds over a's) over the paired steps of every run, and per run."""
    per_run = []
    for steps in runs:
        n = min(len(steps[a]), len(steps[b]))
        sa, sb = sum(steps[a][:n]), sum(steps[b][:n])
        per_run.append({"steps": n, f"{a} s": sa, f"{b} s": sb, "ratio": sb / sa,
                        "median_step_ratio": statistics.median(y / x for x, y in zip(steps[a][:n], steps[b][:n]))})
    total_a = sum(r[f"{a} s"] for r in per_run)
    total_b = sum(r[f"{b} s"] for r in per_run)
    return {"a": a, "b": b, "ratio": total_b / total_a, "runs": per_run,
            "ms_per_step": {a: 1000 * total_a / sum(r["steps"] for r in per_run),
                            b: 1000 * total_b / sum(r["steps"] for r in per_run)}}
