"""Does the onnxruntime-gpu that the notebooks' install cell picks for each CUDA major need that major's libraries?

The install cell (lab.site.notebooks.ORT_GPU_CHOICE) asks the platform's torch for `torch.version.cuda` and pins
onnxruntime-gpu to ORT_GPU_PINS[its major]. A wheel built for another CUDA major installs fine and lists
CUDAExecutionProvider, but its provider library fails to load (week 4 then shows the whole-session fallback). This
checks each pin from the wheel itself, not from release notes:

1. `pip download --no-deps --only-binary=:all:` the pinned wheel (manylinux_2_28 x86_64, CPython 3.11 unless
   `--python` says another);
2. take `onnxruntime/capi/libonnxruntime_providers_cuda.so` out of it and read its ELF dynamic section's DT_NEEDED
   entries (a small reader below; `readelf -d` is asked too where it is installed, and must agree);
3. pass when it needs libcudart.so.<major> and libcublas.so.<major> and no CUDA runtime or cuBLAS of another major.
   The wheel's own `onnxruntime/capi/build_and_package_info.py` (cuda_version) is recorded beside it.

For the CUDA 12 pin it also checks the next release (NEXT_RELEASE): that one must need CUDA 13, which makes the pin
the newest CUDA 12 wheel on PyPI. How the pins were found (2026-12, the same download and readelf by hand, CPython
3.11 wheels): 1.23.2, 1.24.4, 1.25.1 and 1.26.0 need libcudart.so.12 and libcublas.so.12 (build_and_package_info
says CUDA 12.2, then 12.8); 1.27.0, 1.28.0, 1.29.0, 1.30.0 and 1.31.1 need libcudart.so.13 and libcublas.so.13
(CUDA 13.0). ONNX Runtime's CUDA provider page says CUDA 12 became PyPI's default at 1.19; where it says CUDA 13
did was not found, hence the wheels.

    python benchmarks/ort_gpu_wheels.py          # ~280 MB per wheel, three wheels; deleted afterwards

Writes benchmarks/results/ort_gpu_wheels.json: per CUDA major the pin, the wheel file, its NEEDED libraries, the
CUDA libraries among them, the build's cuda_version, and pass/fail. tests/test_ort_gpu_wheels.py holds the install
cell's pins to it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from lab.site.notebooks import ORT_GPU_PINS   # noqa: E402  (the pins the install cell uses)

PROVIDER = "onnxruntime/capi/libonnxruntime_providers_cuda.so"
BUILD_INFO = "onnxruntime/capi/build_and_package_info.py"
NEXT_RELEASE = {"12": "1.27.0"}      # the release after the CUDA 12 pin: it must need another major
RESULTS = ROOT / "benchmarks" / "results" / "ort_gpu_wheels.json"


def needed(lib: bytes) -> list[str]:
    """The DT_NEEDED names of a 64-bit little-endian ELF shared library (what `readelf -d` lists as NEEDED)."""
    if lib[:4] != b"\x7fELF" or lib[4] != 2 or lib[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", lib, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", lib, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", lib, shoff + i * shentsize) for i in range(shnum)]
    SHT_DYNAMIC, DT_NEEDED, DT_NULL = 6, 1, 0
    names = []
    for _name, kind, _flags, _addr, offset, size, link, *_ in sections:
        if kind != SHT_DYNAMIC:
            continue
        strtab = sections[link][4]                  # sh_offset of the linked string table (.dynstr)
        for at in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", lib, at)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                end = lib.index(b"\0", strtab + value)
                names.append(lib[strtab + value:end].decode())
    return names


def readelf_needed(path: Path) -> list[str] | None:
    """What binutils' readelf says, as a cross-check of needed(); None where readelf is not installed."""
    if not shutil.which("readelf"):
        return None
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def cuda_libs(names: list[str]) -> list[str]:
    return [n for n in names if re.match(r"lib(cuda|cudart|cublas|cublasLt|cufft|curand|cudnn|nvrtc)\.so", n)]


def verdict(names: list[str], major: str) -> bool:
    """Needs this major's CUDA runtime and cuBLAS, and no CUDA runtime or cuBLAS of another major."""
    core = [n for n in names if re.match(r"lib(cudart|cublas|cublasLt)\.so\.\d+$", n)]
    return {f"libcudart.so.{major}", f"libcublas.so.{major}"} <= set(core) and \
        all(n.endswith(f".so.{major}") for n in core)


def check(version: str, major: str, python: str, folder: Path) -> dict:
    """Download onnxruntime-gpu==version and read its CUDA provider library's NEEDED entries."""
    into = folder / version
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--platform", "manylinux_2_28_x86_64", "--python-version", python, "-d", str(into),
                    f"onnxruntime-gpu=={version}"], check=True)
    [wheel] = into.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        lib = z.read(PROVIDER)
        info = z.read(BUILD_INFO).decode()
        z.extract(PROVIDER, into)
    names = needed(lib)
    cross = readelf_needed(into / PROVIDER)
    if cross is not None and cross != names:
        raise RuntimeError(f"{wheel.name}: readelf lists {cross}, the reader here {names}")
    build = re.search(r"cuda_version\s*=\s*['\"]([^'\"]*)['\"]", info)
    row = {"pin": version, "wheel": wheel.name, "wheel_mb": round(wheel.stat().st_size / 1e6, 1),
           "library": PROVIDER, "needed": names, "cuda_needed": cuda_libs(names),
           "build_cuda_version": build.group(1) if build else None, "readelf_agrees": cross is not None or None,
           "pass": verdict(names, major)}
    shutil.rmtree(into)                       # ~280 MB each: keep only what was read from it
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="3.11", help="the Python version whose wheel to download (default 3.11)")
    args = ap.parse_args(argv)
    rows, nexts = {}, {}
    with tempfile.TemporaryDirectory(prefix="ort-wheels-") as tmp:
        for major, version in sorted(ORT_GPU_PINS.items()):
            rows[major] = check(version, major, args.python, Path(tmp))
            print(f"CUDA {major}: onnxruntime-gpu=={version} needs {', '.join(rows[major]['cuda_needed'])}: "
                  f"{'pass' if rows[major]['pass'] else 'FAIL'}")
        for major, version in sorted(NEXT_RELEASE.items()):
            row = check(version, major, args.python, Path(tmp))
            row["needs_another_major"] = not row.pop("pass") and any(
                n.startswith("libcudart.so.") and not n.endswith(f".so.{major}") for n in row["needed"])
            nexts[major] = row
            print(f"next release after the CUDA {major} pin: {version} needs {', '.join(row['cuda_needed'])}")
    record = {"pins": rows, "next_release": nexts, "python": args.python, "platform": "manylinux_2_28_x86_64",
              "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              "how": "pip download --no-deps; ELF DT_NEEDED of " + PROVIDER + " (and readelf -d where installed)"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0 if all(r["pass"] for r in rows.values()) and all(r["needs_another_major"] for r in nexts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
