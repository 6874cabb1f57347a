"""ONNX Runtime sessions that never fall back to the CPU silently, and a report of where each node really ran.

Two ways a session asked for the GPU ends up on the CPU, neither of which raises:

whole-session fallback  `CUDAExecutionProvider` is *listed* (onnxruntime-gpu always lists it), but its library
                        fails to load (wrong CUDA/cuDNN, no GPU). ORT logs to stderr and builds a CPU-only session.
per-node fallback       the CUDA provider is active, but has no kernel for some ops, e.g. DynamicQuantizeLinear
                        (uint8) and MatMulInteger outside int8 x int8, which `quantize_dynamic` emits. ORT quietly
                        assigns those nodes to the CPU and copies tensors back and forth on every call.

`session()` catches the first when the session is built. `placement()` reads ORT's own profiling output, in which
every node event names the provider that ran it, and catches the second. Both warn by default (FallbackWarning,
naming the ops) and raise FallbackError with `strict=True`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lab.record import scratch

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# A CPU node whose outputs are all int64 is shape arithmetic (Shape, Gather on a shape, Concat of dims...). ORT puts
# those on the CPU on purpose even in a CUDA session (the result steers the next kernel's launch), so they are not a
# fallback. Anything producing float, int8/uint8 or int32 on the CPU of a CUDA session is real compute that fell back.
SHAPE_DTYPES = {"int64"}


class FallbackError(RuntimeError):
    """The session did not run where it was asked to (strict mode)."""


class FallbackWarning(UserWarning):
    """The session did not run where it was asked to: some or all of its work went to the CPU."""


def providers_for(device: str) -> list[str]:
    """The providers to request: CUDA first with the CPU as the (legitimate) home of shape ops, or the CPU alone."""
    if device == "cuda":
        return [CUDA, CPU]
    if device == "cpu":
        return [CPU]
    raise ValueError(f"device={device!r}: use 'cpu' or 'cuda'")


# ---------------------------------------------------------------- IR version

@functools.lru_cache(maxsize=1)
def max_ir_version() -> int:
    """The newest ONNX IR version this onnxruntime loads, found by trying (ms): onnx 1.23 writes IR 14 by default,
    which onnxruntime 1.31 rejects, so every model we save is pinned to this."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    for ir in range(onnx.IR_VERSION, 7, -1):
        model.ir_version = ir
        try:
            ort.InferenceSession(model.SerializeToString(), providers=[CPU])
            return ir
        except Exception:  # ORT raises its own Fail type for "unsupported IR version"
            continue
    raise RuntimeError(f"onnxruntime {ort.__version__} loads no IR version between 8 and {onnx.IR_VERSION}")


def pin_ir_version(model) -> None:
    """Lower a ModelProto's IR version in place to one this onnxruntime accepts (never raises it)."""
    model.ir_version = min(model.ir_version, max_ir_version())


# ---------------------------------------------------------------- whole-session fallback

def cuda_requirement() -> str | None:
    """The CUDA major version this onnxruntime-gpu build needs, e.g. '13.0' (None for a CPU-only build)."""
    try:
        from onnxruntime.capi import build_and_package_info
        return getattr(build_and_package_info, "cuda_version", None) or None
    except ImportError:
        return None


def likely_cause() -> str:
    """Why the CUDA provider did not load: what ORT needs against what torch sees on this machine."""
    import onnxruntime as ort
    need = cuda_requirement()
    if need is None:
        return (f"this onnxruntime build ({ort.__version__}) has no CUDA provider: install onnxruntime-gpu "
                f"(Linux x86_64) instead of onnxruntime")
    try:
        import torch
        have_gpu = torch.cuda.is_available()
        torch_cuda = torch.version.cuda
        cudnn = torch.backends.cudnn.version() if have_gpu else None
    except ImportError:
        have_gpu, torch_cuda, cudnn = False, None, None
    if not have_gpu:
        build = f"torch built for CUDA {torch_cuda}" if torch_cuda else "torch is a CPU-only build"
        return (f"no CUDA GPU is visible (torch.cuda.is_available() is False; {build}); onnxruntime-gpu "
                f"{ort.__version__} lists CUDAExecutionProvider anyway, but its library needs CUDA {need} and "
                f"cuDNN 9 and a GPU, so it cannot load")
    have, want = (torch_cuda or "?").split(".")[0], need.split(".")[0]
    if have != want:
        return (f"onnxruntime-gpu {ort.__version__} needs CUDA {need} and cuDNN 9, but torch here uses CUDA "
                f"{torch_cuda} (cuDNN {cudnn}): install an onnxruntime-gpu built for CUDA {have}, or the CUDA {want} "
                f"runtime libraries")
    return (f"a GPU is visible and torch uses CUDA {torch_cuda} (cuDNN {cudnn}), matching onnxruntime-gpu's CUDA "
            f"{need}; the stderr line 'Failed to load library libonnxruntime_providers_cuda.so' names what is missing")


def _fallback(message: str, strict: bool) -> None:
    if strict:
        raise FallbackError(message)
    warnings.warn(message, FallbackWarning, stacklevel=3)


def session(model_path, device: str = "cpu", *, threads: int | None = None, profile_dir: str | None = None,
            strict: bool = False):
    """An InferenceSession on `device`, checked: asking for CUDA and getting only the CPU warns (or raises).

    threads: intra-op threads (None = ORT's default, one per physical core); set it to torch's count to compare
    fairly with PyTorch. profile_dir: turn on ORT profiling, writing there (see `placement`).
    """
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
    # No spin-waiting after a run: ORT's pool otherwise keeps the cores busy for a while after each call, and the
    # next call of another model (PyTorch's, in lab.bench's interleaved timing) waits for them. MiniLM, 2 Xeon cores,
    # PyTorch fp32 and ORT fp32/int8 interleaved: PyTorch's batch-1 median 26 ms, p10-p90 11-77 ms with spinning,
    # 15 ms, 13-16 ms without; ORT's own batch-1 latency did not grow (7.6 and 6.5 ms median).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_dir is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(profile_dir) / "ort_profile")
    requested = providers_for(device)
    with _stderr_captured(CUDA in requested) as ort_said:
        sess = ort.InferenceSession(str(model_path), opts, providers=requested)
    active = sess.get_providers()
    if CUDA in requested and CUDA not in active:
        _fallback(f"whole-session fallback: asked for {requested}, ORT runs on {active} only. "
                  f"Likely cause: {likely_cause()}{_ort_reason(ort_said())}", strict)
    elif ort_said():
        sys.stderr.write(ort_said())    # not the failure we report ourselves: pass it on unchanged
    return sess


@contextlib.contextmanager
def _stderr_captured(on: bool):
    """Capture what ORT's C++ logger writes to file descriptor 2 while a CUDA session is built. A CUDA provider
    that cannot load makes it print a red error and a warning there, which on `make course` land on the terminal
    as if the course had failed; the fallback is expected and reported by us (FallbackWarning), with ORT's reason.
    Yields a function returning the captured text."""
    if not on:
        yield lambda: ""
        return
    said = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield lambda: "".join(said)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            said.append(buf.read().decode(errors="replace"))


def _ort_reason(text: str) -> str:
    """ORT's own words for a CUDA provider that did not load, without colours or local paths, e.g.
    '; ORT said: libcublasLt.so.13: cannot open shared object file'."""
    found = re.search(r"with error: (.+?)(?:\x1b|\n|$)", text)
    return f"; ORT said: {found.group(1).strip()}" if found else ""


# ---------------------------------------------------------------- per-node placement from the profile

@dataclass
class NodeEvent:
    name: str        # the node's name in the graph
    op: str          # its op type, e.g. MatMulInteger
    provider: str    # the execution provider that ran it
    dur_us: int      # kernel time of this one call, microseconds
    outputs: list    # output dtypes, e.g. ['float'] or ['uint8', 'float', 'uint8']


def node_events(profile) -> list[NodeEvent]:
    """The node-kernel events of an ORT profile (a path or the loaded list of trace events).

    ORT writes Chrome-trace JSON: one event per node call with cat='Node', a name ending in '_kernel_time', and
    args holding op_name and provider. Other events (session init, fences, 'SequentialExecutor') are skipped.
    """
    events = json.loads(Path(profile).read_text()) if isinstance(profile, (str, Path)) else profile
    out = []
    for e in events:
        args = e.get("args") or {}
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time") or "provider" not in args:
            continue
        dtypes = [next(iter(o)) for o in args.get("output_type_shape", []) if o]
        out.append(NodeEvent(name=e["name"][: -len("_kernel_time")], op=args.get("op_name", "?"),
                             provider=args["provider"], dur_us=int(e.get("dur", 0)), outputs=dtypes))
    return out


@dataclass
class Placement:
    requested: list[str]                    # the providers asked for, in order
    active: list[str]                       # the providers the session actually holds
    by_op: dict[str, dict[str, int]]        # op type -> {provider: node calls}
    time_us: dict[str, int]                 # provider -> total kernel time in the profiled run(s)
    fell_back: list[str] = field(default_factory=list)   # op types with compute nodes on the CPU of a CUDA request

    @property
    def whole_session_fallback(self) -> bool:
        return CUDA in self.requested and CUDA not in self.active

    @property
    def per_node_fallback(self) -> bool:
        return CUDA in self.active and bool(self.fell_back)

    @property
    def ok(self) -> bool:
        return not (self.whole_session_fallback or self.per_node_fallback)

    def summary(self) -> str:
        """One line for a table cell: where it ran, and what fell back."""
        share = {p: t / max(1, sum(self.time_us.values())) for p, t in self.time_us.items()}
        ran = ", ".join(f"{_short(p)} {100 * s:.0f}%" for p, s in sorted(share.items(), key=lambda x: -x[1]))
        if self.whole_session_fallback:
            return "CPU only (CUDA asked for: whole-session fallback)"
        if self.per_node_fallback:
            return f"{ran} of kernel time; on CPU: {', '.join(self.fell_back)}"
        return ran or ", ".join(_short(p) for p in self.active)

    def rows(self) -> list[dict]:
        """Per op type: node calls on each provider, and whether it fell back. For the page's placement table."""
        providers = sorted({p for counts in self.by_op.values() for p in counts})
        return [{"op": op, **{_short(p): counts.get(p, 0) for p in providers},
                 "fell back": "yes" if op in self.fell_back else ""}
                for op, counts in sorted(self.by_op.items(), key=lambda kv: (kv[0] not in self.fell_back, kv[0]))]

    def to_dict(self) -> dict:
        return {"requested": self.requested, "active": self.active, "by_op": self.by_op, "time_us": self.time_us,
                "fell_back": self.fell_back, "whole_session_fallback": self.whole_session_fallback,
                "per_node_fallback": self.per_node_fallback, "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: dict) -> "Placement":
        return cls(d["requested"], d["active"], d["by_op"], d["time_us"], d["fell_back"])


def _short(provider: str) -> str:
    return provider.replace("ExecutionProvider", "")


def placement(profile, requested: list[str], active: list[str] | None = None, *, strict: bool = False) -> Placement:
    """Where each op type ran, from an ORT profile; warns (or raises with strict=True) on any fallback.

    active: the session's providers (sess.get_providers()); by default, the providers seen in the profile.
    """
    events = node_events(profile)
    by_op: dict[str, Counter] = defaultdict(Counter)
    time_us: Counter = Counter()
    cpu_compute: set[str] = set()
    for ev in events:
        by_op[ev.op][ev.provider] += 1
        time_us[ev.provider] += ev.dur_us
        if ev.provider == CPU and not set(ev.outputs) <= SHAPE_DTYPES:
            cpu_compute.add(ev.op)
    seen = sorted({ev.provider for ev in events}, key=lambda p: p != CUDA)
    active = list(active) if active is not None else seen
    fell_back = sorted(cpu_compute) if CUDA in active and CUDA in requested else []
    result = Placement(list(requested), active, {op: dict(c) for op, c in sorted(by_op.items())}, dict(time_us),
                       fell_back)
    if result.whole_session_fallback:
        ops = ", ".join(sorted(by_op))
        _fallback(f"whole-session fallback: asked for {requested}, every node ran on the CPU ({ops}). "
                  f"Likely cause: {likely_cause()}", strict)
    elif result.per_node_fallback:
        _fallback(f"per-node fallback: the CUDA provider is active but these ops ran on the CPU: "
                  f"{', '.join(fell_back)}. The CUDA provider has no kernel for them; every call copies their "
                  f"inputs to the host and back.", strict)
    return result


def profile_placement(model_path, feeds: dict, device: str = "cuda", *, runs: int = 1,
                      strict: bool = False) -> tuple[Placement, list]:
    """Run a model `runs` times with ORT profiling on and report where each node ran.

    Returns (placement, the raw node-kernel events of the profile as dicts), so a caller can keep the evidence.
    The session-level check is left to `placement` (one warning, not two).
    """
    with scratch.directory("ort-profile") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)   # session() would warn; placement() warns below
        sess = session(model_path, device, profile_dir=str(tmp))
        for _ in range(runs):
            sess.run(None, feeds)
        path = sess.end_profiling()
        events = json.loads(Path(path).read_text())
    result = placement(events, providers_for(device), sess.get_providers(), strict=strict)
    return result, [e for e in events if e.get("cat") == "Node"]



def exercise_placement() -> Placement:
    """Week 4's exercise: the placement report of a CUDA session of an int8 model in which DynamicQuantizeLinear and
    MatMulInteger fell back to the CPU. The profile, in ORT's own trace format, ships inside the package
    (lab/resources; built by tests/fixtures/ort/build_mixed_profile.py), so a pip-installed lab can show it. No
    warning: the exercise asks the reader to find the fallback."""
    from importlib.resources import files
    events = json.loads(files("lab").joinpath("resources", "mixed_cuda_cpu_profile.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        return placement(events, requested=[CUDA, CPU], active=[CUDA, CPU])
