"""The one build entry for KeyDNN's native libraries: native/cpu -> libkeydnn_cpu, native/cuda -> libkeydnn_cuda.

Called by nox (``nox -s build_native``), ``.ci/run``, the Docker images and the GPU machine as
``python native/build.py [--cpu-only|--cuda-only] [--out DIR]``. Libraries land in ``keydnn/_native/``
(found there by an editable install and the tests) with a ``build_info.json`` that ``python -m keydnn info``
prints. Without OpenMP the CPU library is built serially; without nvcc the CUDA library is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT.parent / "keydnn" / "_native"
CXX_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-shared", "-Wall", "-Wextra", "-fno-math-errno"]
# sm_80 and sm_90 machine code plus PTX for newer GPUs.
CUDA_ARCH = ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90",
             "-gencode=arch=compute_90,code=compute_90"]
NVCC_FLAGS = ["-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-lineinfo", "--threads", "0"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True)


def _compiler_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return lines[-1] if "nvcc" in exe and lines else (lines[0] if lines else "unknown")


def _openmp_works(cxx: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.cpp"
        src.write_text("#include <omp.h>\nint main(){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        return _run([cxx, "-fopenmp", str(src), "-o", str(Path(tmp) / "omp")]).returncode == 0


def build_cpu(out: Path) -> dict:
    sources = sorted(str(p) for p in (ROOT / "cpu").glob("*.cpp"))
    if not sources:
        return {"built": False, "reason": "no sources in native/cpu"}
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return {"built": False, "reason": f"C++ compiler {cxx!r} not found"}
    extra = os.environ.get("KEYDNN_CXXFLAGS", "-march=native").split()
    openmp = os.environ.get("KEYDNN_OPENMP", "1") != "0" and _openmp_works(cxx)
    flags = CXX_FLAGS + extra + (["-fopenmp"] if openmp else [])
    lib = out / "libkeydnn_cpu.so"
    res = _run([cxx, *flags, "-I", str(ROOT / "include"), *sources, "-o", str(lib)])
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"native CPU build failed ({cxx})")
    return {"built": True, "path": lib.name, "compiler": _compiler_version(cxx), "flags": flags,
            "openmp": openmp, "sources": [Path(s).name for s in sources]}


def build_cuda(out: Path) -> dict:
    sources = sorted(str(p) for p in (ROOT / "cuda").glob("*.cu"))
    if not sources:
        return {"built": False, "reason": "no sources in native/cuda"}
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not Path(nvcc).exists() and shutil.which(nvcc) is None:
        return {"built": False, "reason": "nvcc not found"}
    arch = os.environ.get("KEYDNN_CUDA_ARCH", "").split() or CUDA_ARCH
    flags = NVCC_FLAGS + arch
    lib = out / "libkeydnn_cuda.so"
    res = _run([nvcc, *flags, "-I", str(ROOT / "include"), *sources, "-o", str(lib), "-lcudart"])
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit("native CUDA build failed (nvcc)")
    return {"built": True, "path": lib.name, "compiler": _compiler_version(nvcc), "flags": flags,
            "sources": [Path(s).name for s in sources]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--cpu-only", action="store_true")
    group.add_argument("--cuda-only", action="store_true")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    info_path = args.out / "build_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not args.cuda_only:
        info["cpu"] = build_cpu(args.out)
    if not args.cpu_only:
        info["cuda"] = build_cuda(args.out)
    info_path.write_text(json.dumps(info, indent=2))
    for name, entry in info.items():
        state = f"built {entry['path']}" if entry.get("built") else f"skipped: {entry.get('reason')}"
        print(f"keydnn native {name}: {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
