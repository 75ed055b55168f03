"""native/build.py: which CUDA architectures it builds and why, one parallel nvcc per .cu file then one link,
and the size + sha256 it records for the loaders. nvcc and nvidia-smi are stand-in scripts here, so the
orchestration is checked in a second, not in the minutes a real CUDA build takes."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("keydnn_build", ROOT / "native" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
SOURCES = sorted(p.name for p in (ROOT / "native" / "cuda").glob("*.cu"))
NVCC_ARCHS = [75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121]  # nvcc 13.0's --list-gpu-arch

FAKE_NVCC = f"""#!{sys.executable}
import json, os, sys, time
args = sys.argv[1:]
if "--version" in args:
    print("Cuda compilation tools, release 13.0, V13.0.88"); sys.exit(0)
if "--list-gpu-arch" in args:
    print("\\n".join("compute_%d" % a for a in {NVCC_ARCHS})); sys.exit(0)
start = time.time()
if "-c" in args:
    time.sleep(0.3)
out = args[args.index("-o") + 1]
with open(out, "wb") as f:
    f.write(b"object " + " ".join(args).encode())
with open(os.environ["FAKE_NVCC_LOG"], "a") as f:
    f.write(json.dumps({{"args": args, "start": start, "end": time.time()}}) + "\\n")
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def fake_nvcc(tmp_path, monkeypatch):
    log = tmp_path / "nvcc.log"
    monkeypatch.setenv("NVCC", str(_executable(tmp_path / "nvcc", FAKE_NVCC)))
    monkeypatch.setenv("FAKE_NVCC_LOG", str(log))
    return lambda: [json.loads(line) for line in log.read_text().splitlines()]


def test_no_gpu_builds_ptx_for_the_oldest_architecture_only():
    archs, ptx, why = build.resolve_arch("auto", NVCC_ARCHS, [], "no nvidia-smi")
    assert (archs, ptx) == ([], 80) and why.startswith("no GPU found (no nvidia-smi): PTX for compute_80 only")
    assert build.gencode_flags(archs, ptx) == ["-gencode=arch=compute_80,code=compute_80"]


def test_gpus_present_get_machine_code_for_each_distinct_capability():
    archs, ptx, why = build.resolve_arch("auto", NVCC_ARCHS, [("NVIDIA H200", 90), ("NVIDIA H200", 90),
                                                              ("NVIDIA A100", 80)], "nvidia-smi")
    assert (archs, ptx) == ([80, 90], None)
    assert "NVIDIA H200 (9.0)" in why and "machine code for sm_80, sm_90" in why


def test_a_gpu_newer_than_nvcc_gets_ptx_it_can_jit():
    archs, ptx, why = build.resolve_arch("auto", [80, 86, 90], [("future GPU", 120)], "NVML")
    assert (archs, ptx) == ([], 90) and "which this nvcc cannot target" in why
    with pytest.raises(SystemExit, match="needs sm_80 or newer"):
        build.resolve_arch("auto", NVCC_ARCHS, [("Tesla T4", 75)], "nvidia-smi")


def test_all_and_explicit_lists():
    assert build.resolve_arch("all", NVCC_ARCHS, [], "")[:2] == ([80, 86, 89, 90], 90)
    assert build.resolve_arch("90,80", NVCC_ARCHS, [], "")[:2] == ([80, 90], None)
    assert build.parse_arch_list("sm_90 8.6 compute_100") == [86, 90, 100]
    for bad in ("9", "sm_9x", "ninety"):
        with pytest.raises(SystemExit, match="is not a compute capability"):
            build.parse_arch_list(bad)
    with pytest.raises(SystemExit, match="this nvcc cannot build sm_95"):
        build.resolve_arch("95", NVCC_ARCHS, [], "")


def test_gpus_are_read_from_nvidia_smi(tmp_path, monkeypatch):
    _executable(tmp_path / "nvidia-smi", "#!/bin/sh\necho 'NVIDIA H200, 9.0'\necho 'NVIDIA L4, 8.9'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert build.detect_gpus() == ([("NVIDIA H200", 90), ("NVIDIA L4", 89)], "nvidia-smi")


def test_cuda_files_compile_in_parallel_then_link_once(tmp_path, fake_nvcc, monkeypatch, capsys):
    monkeypatch.setattr(build, "detect_gpus", lambda: ([("NVIDIA H200", 90)], "nvidia-smi"))
    entry = build.build_cuda(tmp_path, "auto", jobs=4)
    calls = fake_nvcc()
    compiles = [c for c in calls if "-c" in c["args"]]
    links = [c for c in calls if "-shared" in c["args"]]
    assert sorted(Path(c["args"][c["args"].index("-c") + 1]).name for c in compiles) == SOURCES
    assert all("-gencode=arch=compute_90,code=sm_90" in c["args"] for c in compiles)
    assert len(links) == 1 and sum(a.endswith(".o") for a in links[0]["args"]) == len(SOURCES)
    overlapping = sum(a["start"] < b["end"] and b["start"] < a["end"] for a in compiles for b in compiles if a is not b)
    assert overlapping > 0, "no two nvcc processes ran at the same time"
    lib = tmp_path / "libkeydnn_cuda.so"
    assert entry["cuda_arch"] == ["sm_90"] and entry["size"] == lib.stat().st_size
    assert entry["sha256"] == build.hashlib.sha256(lib.read_bytes()).hexdigest()
    assert not list(tmp_path.glob("*.partial"))
    out = capsys.readouterr().out
    assert "keydnn native cuda: GPUs present (nvidia-smi: NVIDIA H200 (9.0)): machine code for sm_90" in out
    assert f"compiling {len(SOURCES)} files in 4 parallel nvcc processes" in out


def test_a_failing_file_is_named_and_leaves_the_old_library(tmp_path, fake_nvcc, monkeypatch):
    lib = tmp_path / "libkeydnn_cuda.so"
    lib.write_bytes(b"previous build")
    failing = FAKE_NVCC.replace('if "-c" in args:', 'if "-c" in args and "reduce.cu" in " ".join(args):\n'
                                '    sys.stderr.write("reduce.cu(1): error: boom\\n"); sys.exit(2)\nif "-c" in args:')
    monkeypatch.setenv("NVCC", str(_executable(tmp_path / "nvcc_failing", failing)))
    with pytest.raises(SystemExit, match=r"native CUDA build failed \(nvcc\) in reduce.cu"):
        build.build_cuda(tmp_path, "90")
    assert lib.read_bytes() == b"previous build"


def test_main_writes_the_manifest_with_cuda_arch(tmp_path, fake_nvcc, monkeypatch):
    assert build.main(["--cuda-only", "--cuda-arch", "all", "--out", str(tmp_path)]) == 0
    entry = json.loads((tmp_path / "build_info.json").read_text())["cuda"]
    assert entry["cuda_arch"] == ["sm_80", "sm_86", "sm_89", "sm_90", "compute_90"]
    assert entry["arch_reason"].startswith("--cuda-arch all")
    with pytest.raises(SystemExit, match="is not a compute capability"):
        build.main(["--cuda-arch", "sm9", "--out", str(tmp_path)])
