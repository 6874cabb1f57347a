"""What a training loop asks torch to compute, operator by operator (torch.profiler), per optimizer step.

Two loops that call the same model, clipping and optimizer on the same batches make the same operator calls; the
profile shows it call for call, and names any operator one loop calls that the other does not.

    with OperatorSteps(active=16) as ops:
        train.train(model, tokenizer, splits, profile)
    ops.per_step()   # {"aten::mm": {"calls": 76.0, "self_ms": 376.5}, ...}

The profile skips the first 4 optimizer steps (2 waited, 2 warming the profiler up), then records `active` steps;
the schedule advances on torch's global optimizer-step hook, so neither loop is edited to be profiled. Self time
is an operator's own CPU time without the operators it calls; the profiler adds a few microseconds a call.
"""
from __future__ import annotations

from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile, schedule

WAIT, WARMUP = 2, 2


class OperatorSteps:
    def __init__(self, active: int = 16):
        self.active, self.steps = active, 0
        self.averages = None

    def __enter__(self):
        self.profiler = profile(activities=[ProfilerActivity.CPU],
                                schedule=schedule(wait=WAIT, warmup=WARMUP, active=self.active, repeat=1),
                                on_trace_ready=self._ready)
        self.profiler.__enter__()
        self.hook = register_optimizer_step_post_hook(self._step)
        return self

    def _step(self, *args):
        self.steps += 1
        self.profiler.step()

    def _ready(self, prof):
        self.averages = prof.key_averages()

    def __exit__(self, *exc):
        self.hook.remove()
        self.profiler.__exit__(*exc)
        return False

    def per_step(self) -> dict[str, dict]:
        """{operator: {"calls", "self_ms"}} per recorded step, aten operators and autograd nodes alike; the
        profiler's own step markers and loop-level Python ranges (a DataLoader's __next__) are left out."""
        if self.steps < WAIT + WARMUP + self.active:
            raise RuntimeError(f"the loop made {self.steps} optimizer steps, fewer than the {WAIT + WARMUP} skipped "
                               f"and {self.active} recorded: lower `active` or train on more batches")
        return {e.key: {"calls": e.count / self.active, "self_ms": e.self_cpu_time_total / 1000 / self.active}
                for e in self.averages if "::" in e.key and not e.key.startswith("ProfilerStep")}


def compare(a: dict[str, dict], b: dict[str, dict], top: int = 10) -> dict:
    """The two profiles side by side: calls per step in all, the `top` operators by self time, and every operator
    whose calls per step differ between the loops."""
    names = sorted(set(a) | set(b), key=lambda k: -max(a.get(k, {}).get("self_ms", 0), b.get(k, {}).get("self_ms", 0)))
    zero = {"calls": 0.0, "self_ms": 0.0}
    row = lambda k: {"operator": k, "a": a.get(k, zero), "b": b.get(k, zero)}     # noqa: E731
    return {"calls_per_step": [sum(x["calls"] for x in a.values()), sum(x["calls"] for x in b.values())],
            "self_ms_per_step": [sum(x["self_ms"] for x in a.values()), sum(x["self_ms"] for x in b.values())],
            "top": [row(k) for k in names[:top]],
            "differ": [row(k) for k in names if abs(a.get(k, zero)["calls"] - b.get(k, zero)["calls"]) > 1e-9]}
