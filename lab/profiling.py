"""Kernel time per execution provider, from ONNX Runtime's own profile (week 4's exercise 2).

ONNX Runtime writes a Chrome-trace JSON file when a session is opened with `SessionOptions.enable_profiling`:
one event per node call (cat 'Node', a name ending in '_kernel_time', `args.provider` the execution provider that
ran it, `dur` its kernel time in microseconds), beside session events (loading, initialisation) that are no
kernel's time. The placement table of week 4 counts the node calls; this module sums their time.

    from lab import profiling
    events = profiling.profile_session("model.onnx", feeds, providers=["CPUExecutionProvider"], runs=3)
    profiling.kernel_time_by_provider(events)      # {'CPUExecutionProvider': 41234}
    profiling.share(events, "CPUExecutionProvider")

No recipe imports this module, so editing it stales no record.
"""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from importlib.resources import files
from pathlib import Path

from lab import runtime

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def load_trace(trace) -> list[dict]:
    """The events of a profile: a path to ORT's JSON file, or the already loaded list."""
    if isinstance(trace, (str, Path)):
        return json.loads(Path(trace).read_text(encoding="utf-8"))
    return list(trace)


def exercise_trace() -> list[dict]:
    """The trace week 4's exercise reads: a CUDA session of an int8 model in which two op types fell back to the
    CPU (the same file lab.runtime.exercise_placement reports on, shipped in lab/resources)."""
    return json.loads(files("lab").joinpath("resources", "mixed_cuda_cpu_profile.json").read_text())


def kernel_events(trace) -> list[dict]:
    """The node-kernel events only: what ran on an execution provider, not session bookkeeping."""
    return [e for e in load_trace(trace)
            if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")
            and "provider" in (e.get("args") or {})]


def kernel_time_by_provider(trace) -> dict[str, int]:
    """Microseconds of kernel time per execution provider, summed over every node call in the trace (the events
    lab.runtime.node_events reads, as week 4's placement report sums them)."""
    total: Counter = Counter()
    for e in runtime.node_events(load_trace(trace)):
        total[e.provider] += e.dur_us
    return dict(total)


def share(trace, provider: str = CPU) -> float:
    """The share (0 to 1) of all kernel time that `provider` took."""
    times = kernel_time_by_provider(trace)
    if not times or sum(times.values()) == 0:
        raise ValueError("the trace holds no node-kernel events with a duration: was the session run after "
                         "profiling was enabled, and is this ORT's profile file?")
    return times.get(provider, 0) / sum(times.values())


def profile_session(model_path, feeds: dict, providers=(CPU,), runs: int = 3, folder=None) -> list[dict]:
    """Open an ONNX Runtime session with profiling on, run it `runs` times on `feeds` (input name -> numpy
    array) and return the profile's events. The JSON file stays in `folder` (a temp folder by default)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    folder = Path(folder or tempfile.mkdtemp(prefix="ort-profile-"))
    folder.mkdir(parents=True, exist_ok=True)
    opts.profile_file_prefix = str(folder / "ort_profile")
    sess = ort.InferenceSession(str(model_path), opts, providers=list(providers))
    for _ in range(runs):
        sess.run(None, feeds)
    return load_trace(sess.end_profiling())
