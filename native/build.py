"""The one build entry for KeyDNN's native libraries: native/cpu -> libkeydnn_cpu, native/cuda -> libkeydnn_cuda.

Called by nox (``nox -s build_native``), ``.ci/run``, the Docker images and the GPU machine as
``python native/build.py [--cpu-only|--cuda-only] [--cuda-arch auto|all|90,80] [--out DIR]``. Libraries land
in ``keydnn/_native/`` (found there by an editable install and the tests) with a ``build_info.json`` that
``python -m keydnn info`` prints and the loaders check (each library's size and sha256: a truncated or
replaced file is refused before it is loaded). Without OpenMP the CPU library is built serially; without
nvcc the CUDA library is skipped.

CUDA architectures (``--cuda-arch``, default ``$KEYDNN_CUDA_ARCH`` or ``auto``):
  auto   machine code for the GPUs present (compute capability from nvidia-smi, else NVML); with no GPU,
         PTX for compute_80 only, which builds fastest and which the driver JIT-compiles at first load
         on any GPU from sm_80 up (CI uses this: it checks that the library compiles).
  all    machine code for sm_80, sm_86, sm_89 and sm_90 plus PTX for newer GPUs (images and wheels).
  90,80  machine code for exactly these (also written sm_90 or 9.0).
The .cu files compile in parallel, one object each, then link into the library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT.parent / "keydnn" / "_native"
CXX_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-shared", "-Wall", "-Wextra", "-fno-math-errno"]
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-lineinfo"]
ALL_ARCHS = [80, 86, 89, 90]  # Ampere (A100, RTX 30xx), Ada (RTX 40xx, L4), Hopper (H100/H200)
MIN_ARCH = 80  # the oldest architecture KeyDNN's kernels are built and tested for


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


def _record(lib: Path) -> dict:
    """Size and sha256 of a built library, which the loaders compare before loading it."""
    return {"size": lib.stat().st_size, "sha256": hashlib.sha256(lib.read_bytes()).hexdigest()}


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
    partial = lib.with_name(lib.name + ".partial")  # renamed into place: an interrupted build leaves no half file
    res = _run([cxx, *flags, "-I", str(ROOT / "include"), *sources, "-o", str(partial)])
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"native CPU build failed ({cxx})")
    os.replace(partial, lib)
    return {"built": True, "path": lib.name, "compiler": _compiler_version(cxx), "flags": flags,
            "openmp": openmp, "sources": [Path(s).name for s in sources], **_record(lib)}


# ---- CUDA architectures --------------------------------------------------------------------------------
def parse_arch_list(spec: str) -> list[int]:
    """'90,80' / 'sm_90 sm_80' / '9.0,8.0' -> [80, 90]; SystemExit naming a bad entry."""
    archs = set()
    for token in re.split(r"[,\s]+", spec.strip()):
        m = re.fullmatch(r"(?:sm_|compute_)?(\d+)(?:\.(\d))?", token)
        if not m or (m.group(2) is None and len(m.group(1)) < 2):
            raise SystemExit(f"--cuda-arch: {token!r} is not a compute capability (write 90, sm_90 or 9.0); "
                             "use auto, all or a list such as 90,80")
        archs.add(int(m.group(1)) * 10 + int(m.group(2)) if m.group(2) is not None else int(m.group(1)))
    return sorted(archs)


def detect_gpus() -> tuple[list[tuple[str, int]], str]:
    """(name, compute capability as 90) of each visible GPU, and how they were found (or why none were)."""
    tried = []
    smi = shutil.which("nvidia-smi")
    if smi:
        res = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True)
        gpus = []
        for line in res.stdout.splitlines() if res.returncode == 0 else []:
            name, _, cap = line.rpartition(",")
            if re.fullmatch(r"\s*\d+\.\d+\s*", cap):
                major, minor = cap.strip().split(".")
                gpus.append((name.strip(), int(major) * 10 + int(minor)))
        if gpus:
            return gpus, "nvidia-smi"
        tried.append(f"nvidia-smi found no GPU (exit {res.returncode})")
    else:
        tried.append("no nvidia-smi")
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                name = pynvml.nvmlDeviceGetName(handle)
                gpus.append((name.decode() if isinstance(name, bytes) else name, major * 10 + minor))
        finally:
            pynvml.nvmlShutdown()
        if gpus:
            return gpus, "NVML"
        tried.append("NVML found no GPU")
    except ImportError:
        tried.append("no NVML (nvidia-ml-py)")
    except Exception as exc:  # pynvml.NVMLError when there is no driver
        tried.append(f"NVML: {exc}")
    return [], "; ".join(tried)


def nvcc_archs(nvcc: str) -> list[int]:
    """The compute capabilities this nvcc can compile for (``nvcc --list-gpu-arch``); [] if it cannot say."""
    try:
        out = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return sorted({int(m) for m in re.findall(r"compute_(\d+)", out)})


def resolve_arch(spec: str, supported: list[int], gpus: list[tuple[str, int]],
                 found_how: str) -> tuple[list[int], int | None, str]:
    """(machine-code archs, PTX arch or None, why) for --cuda-arch ``spec``."""
    if spec == "all":
        return ALL_ARCHS, ALL_ARCHS[-1], (f"--cuda-arch all: machine code for {_names(ALL_ARCHS)} and PTX "
                                          f"compute_{ALL_ARCHS[-1]} for newer GPUs")
    if spec != "auto":
        archs = parse_arch_list(spec)
        bad = [a for a in archs if supported and a not in supported]
        if bad:
            raise SystemExit(f"--cuda-arch: this nvcc cannot build {_names(bad)} (it knows {_names(supported)})")
        return archs, None, f"--cuda-arch {spec}: machine code for {_names(archs)}"
    if not gpus:
        return [], MIN_ARCH, (f"no GPU found ({found_how}): PTX for compute_{MIN_ARCH} only, the quickest build; "
                              f"the driver JIT-compiles it at first load on any GPU from sm_{MIN_ARCH} up "
                              "(--cuda-arch all for machine code)")
    present = sorted({cap for _, cap in gpus})
    listed = ", ".join(f"{name} ({cap // 10}.{cap % 10})" for name, cap in gpus)
    old = [a for a in present if a < MIN_ARCH]
    if old:
        raise SystemExit(f"the GPUs present ({listed}) include {_names(old)}; KeyDNN needs sm_{MIN_ARCH} or newer")
    archs = [a for a in present if not supported or a in supported]
    newer = [a for a in present if a not in archs]
    ptx = max(a for a in supported if a <= min(newer)) if newer else None
    why = f"GPUs present ({found_how}: {listed})" + (f": machine code for {_names(archs)}" if archs else "")
    if ptx is not None:
        why += f"; PTX compute_{ptx} for {_names(newer)}, which this nvcc cannot target"
    return archs, ptx, why


def gencode_flags(archs: list[int], ptx: int | None) -> list[str]:
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    if ptx is not None:
        flags.append(f"-gencode=arch=compute_{ptx},code=compute_{ptx}")
    return flags


def _names(archs: list[int]) -> str:
    return ", ".join(f"sm_{a}" for a in archs)


def build_cuda(out: Path, arch_spec: str = "auto", jobs: int | None = None) -> dict:
    sources = sorted((ROOT / "cuda").glob("*.cu"))
    if not sources:
        return {"built": False, "reason": "no sources in native/cuda"}
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not Path(nvcc).exists() and shutil.which(nvcc) is None:
        return {"built": False, "reason": "nvcc not found"}
    gpus, found_how = detect_gpus() if arch_spec == "auto" else ([], "")
    archs, ptx, why = resolve_arch(arch_spec, nvcc_archs(nvcc), gpus, found_how)
    arch_flags = gencode_flags(archs, ptx)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(sources)))
    # nvcc's own --threads splits one file's architectures; share the cores between the parallel files.
    threads = max(1, (os.cpu_count() or 1) // jobs)
    flags = NVCC_FLAGS + ["--threads", str(threads)] + arch_flags
    print(f"keydnn native cuda: {why}", flush=True)
    print(f"keydnn native cuda: compiling {len(sources)} files in {jobs} parallel nvcc processes", flush=True)
    lib = out / "libkeydnn_cuda.so"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keydnn-cuda-") as tmp:
        def compile_one(src: Path) -> tuple[Path, subprocess.CompletedProcess]:
            obj = Path(tmp) / (src.stem + ".o")
            return obj, _run([nvcc, *flags, "-I", str(ROOT / "include"), "-c", str(src), "-o", str(obj)])

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(compile_one, sources))
        failed = [(obj, res) for obj, res in results if res.returncode != 0]
        for obj, res in failed:
            sys.stderr.write(f"--- {obj.stem}.cu ---\n{res.stderr}")
        if failed:
            raise SystemExit(f"native CUDA build failed (nvcc) in {', '.join(o.stem + '.cu' for o, _ in failed)}")
        partial = lib.with_name(lib.name + ".partial")
        res = _run([nvcc, "-shared", *arch_flags, *[str(obj) for obj, _ in results], "-o", str(partial), "-lcudart"])
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise SystemExit("native CUDA link failed (nvcc)")
        os.replace(partial, lib)
    seconds = round(time.perf_counter() - start, 1)
    print(f"keydnn native cuda: compiled and linked in {seconds} s", flush=True)
    return {"built": True, "path": lib.name, "compiler": _compiler_version(nvcc), "flags": flags,
            "cuda_arch": [f"sm_{a}" for a in archs] + ([f"compute_{ptx}"] if ptx is not None else []),
            "arch_reason": why, "build_seconds": seconds, "sources": [s.name for s in sources], **_record(lib)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--cpu-only", action="store_true")
    group.add_argument("--cuda-only", action="store_true")
    ap.add_argument("--cuda-arch", default=os.environ.get("KEYDNN_CUDA_ARCH", "auto"),
                    help="auto (default), all, or a list such as 90,80 (see below)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel nvcc processes (default: one per core)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.cuda_arch not in ("auto", "all"):
        parse_arch_list(args.cuda_arch)  # a typo fails before the CPU build, not after it
    args.out.mkdir(parents=True, exist_ok=True)
    info_path = args.out / "build_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not args.cuda_only:
        info["cpu"] = build_cpu(args.out)
    if not args.cpu_only:
        info["cuda"] = build_cuda(args.out, args.cuda_arch, args.jobs)
    info_path.write_text(json.dumps(info, indent=2))
    for name, entry in info.items():
        state = f"built {entry['path']}" if entry.get("built") else f"skipped: {entry.get('reason')}"
        print(f"keydnn native {name}: {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
