"""Where a training loop's time goes, measured from outside the loop, so lab.train and the HF Trainer are timed
by the same instrument and neither loop is edited to be measured.

    with Phases(model, extra=[(lab.data, "collate", "batch building")]) as phases:
        train.train(model, tokenizer, splits, profile)
    phases.summary()   # {"steps": 62, "window_s": 41.3, "ms_per_step": {"forward": 301.2, ...}}

The window runs from the start of the first training forward (model in train mode) to the start of the last one,
so it holds every step but the last, whole: setup before the loop (tokenization, optimizer, the Trainer's
dataloader and accelerator) and evaluation after it fall outside for both loops. Inside it each phase is timed
exclusively: time spent in a phase nested in another (an `.item()` inside forward) counts once, for the inner one.
'rest of the loop' is the window minus every phase: the loop's own Python, bookkeeping and callbacks.

The hooks: forward through module hooks on the model; backward by wrapping Tensor.backward; clipping by wrapping
torch.nn.utils.clip_grad_norm_ (lab.train and accelerate both call it through that name); optimizer steps through
torch's global optimizer step hooks; zero_grad and the lr scheduler's step by wrapping their methods; host syncs
as Tensor.item and Tensor.__bool__ (on the CPU these wait for nothing: a sync costs only the call); progress
through tqdm's update and set_postfix. Each wrapper costs about a microsecond a call: noise next to a step.
"""
from __future__ import annotations

import contextlib
import functools
import time

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

PHASES = ("batch building", "forward", "backward", "gradient clipping", "optimizer step", "zero_grad",
          "lr schedule", "host sync (.item, bool)", "progress bar")
REST = "rest of the loop"


class Phases:
    def __init__(self, model, extra=()):
        """extra: (owner, attribute, phase) triples to wrap as well, e.g. the loop's batch builder."""
        self.model, self.extra = model, list(extra)
        self.slices: list[tuple[str, float, float]] = []     # (phase, start, end), exclusive time
        self.forward_starts: list[float] = []                 # perf_counter() at each training forward
        self.stack: list[str] = []
        self.mark = time.perf_counter()
        self.undo: list = []

    # exclusive timing: entering a phase closes the enclosing phase's current slice, leaving it reopens it
    def _close(self, now: float) -> None:
        if self.stack:
            self.slices.append((self.stack[-1], self.mark, now))
        self.mark = now

    def enter(self, phase: str) -> None:
        self._close(time.perf_counter())
        self.stack.append(phase)

    def exit(self) -> None:
        self._close(time.perf_counter())
        self.stack.pop()

    def _wrap(self, owner, attr: str, phase: str) -> None:
        original, owned = getattr(owner, attr), attr in vars(owner)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            self.enter(phase)
            try:
                return original(*args, **kwargs)
            finally:
                self.exit()
        setattr(owner, attr, timed)
        self.undo.append(lambda: setattr(owner, attr, original) if owned else delattr(owner, attr))

    def _forward_pre(self, module, args):
        if module.training:
            self.forward_starts.append(time.perf_counter())
        self.enter("forward")

    def __enter__(self):
        from tqdm.std import tqdm
        self.undo += [self.model.register_forward_pre_hook(self._forward_pre).remove,
                      self.model.register_forward_hook(lambda *a: self.exit(), always_call=True).remove,
                      register_optimizer_step_pre_hook(lambda *a: self.enter("optimizer step")).remove,
                      register_optimizer_step_post_hook(lambda *a: self.exit()).remove]
        for owner, attr, phase in [(torch.Tensor, "backward", "backward"),
                                   (torch.nn.utils, "clip_grad_norm_", "gradient clipping"),
                                   (torch.optim.Optimizer, "zero_grad", "zero_grad"),
                                   (torch.nn.Module, "zero_grad", "zero_grad"),
                                   (torch.optim.lr_scheduler.LRScheduler, "step", "lr schedule"),
                                   (torch.Tensor, "item", "host sync (.item, bool)"),
                                   (torch.Tensor, "__bool__", "host sync (.item, bool)"),
                                   (tqdm, "update", "progress bar"), (tqdm, "set_postfix", "progress bar"),
                                   *self.extra]:
            self._wrap(owner, attr, phase)
        return self

    def __exit__(self, *exc):
        for undo in reversed(self.undo):
            undo()
        return False

    def summary(self) -> dict:
        """Milliseconds per step for each phase inside the window, and the rest of the loop."""
        if len(self.forward_starts) < 2:
            raise RuntimeError(f"need at least two training steps to time, saw {len(self.forward_starts)}")
        start, end = self.forward_starts[0], self.forward_starts[-1]
        steps = len(self.forward_starts) - 1
        total = {phase: 0.0 for phase in PHASES}
        for phase, t0, t1 in self.slices:
            if start <= t0 < end:
                total[phase] = total.get(phase, 0.0) + min(t1, end) - t0
        window = end - start
        ms = {phase: 1000 * s / steps for phase, s in total.items()}
        ms[REST] = 1000 * (window - sum(total.values())) / steps
        return {"steps": steps, "window_s": window, "ms_per_step": ms, "step_ms": 1000 * window / steps}


@contextlib.contextmanager
def training_clock(model):
    """Yields a dict whose 'start' becomes the perf_counter() time of the model's first forward in train mode: the
    row clock of the throughput benchmark starts there for every loop, after its setup. 'cpu_start' is the
    process's CPU time then (all threads): CPU seconds vary less than wall seconds when other processes compete."""
    clock = {"start": None, "cpu_start": None}

    def hook(module, args):
        if module.training and clock["start"] is None:
            clock["start"], clock["cpu_start"] = time.perf_counter(), time.process_time()
    handle = model.register_forward_pre_hook(hook)
    try:
        yield clock
    finally:
        handle.remove()
