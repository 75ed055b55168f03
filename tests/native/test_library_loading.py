"""Loading the native libraries: a damaged file is refused before dlopen (a clean warning and the NumPy
fallback on the CPU, "CUDA unavailable" with the reason for the CUDA library) instead of a Bus error; the
messages when a library or the NVIDIA driver is missing name the call and say what to do once."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keydnn.infrastructure.backends import _libcheck

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "keydnn" / "_native"
CPU_LIB = NATIVE / "libkeydnn_cpu.so"
needs_cpu_lib = pytest.mark.skipif(not CPU_LIB.exists(), reason="native CPU library not built (python native/build.py)")

CONV = """
import numpy as np
from keydnn import Tensor
from keydnn.nn import Conv2d
from keydnn.infrastructure import backends
x = Tensor.from_numpy(np.ones((1, 3, 8, 8), np.float32))
print(backends.cpu_backend_name(), Conv2d(3, 4, 3)(x).shape)
"""


def _python(code: str, native_dir: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    environ.pop("KEYDNN_CPU_BACKEND", None)
    if native_dir is not None:
        environ["KEYDNN_NATIVE_DIR"] = str(native_dir)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300)


def _copy_truncated(src: Path, dst_dir: Path, name: str, keep: float = 0.5, manifest: bool = True) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    dst = dst_dir / name
    dst.write_bytes(data[: int(len(data) * keep)])
    if manifest and (src.parent / "build_info.json").exists():
        shutil.copy(src.parent / "build_info.json", dst_dir / "build_info.json")
    return dst


@needs_cpu_lib
def test_truncated_cpu_library_warns_and_falls_back_to_numpy(tmp_path):
    _copy_truncated(CPU_LIB, tmp_path, CPU_LIB.name)
    res = _python(CONV, tmp_path)
    assert res.returncode == 0, f"exit {res.returncode} (-7 is the Bus error): {res.stderr[-2000:]}"
    assert res.stdout.split() == ["numpy", "(1,", "4,", "6,", "6)"]
    assert "native CPU library not loaded, using the NumPy kernels" in res.stderr
    assert "is truncated" in res.stderr and "rebuild it with" in res.stderr


@needs_cpu_lib
def test_truncated_cpu_library_without_a_manifest_is_caught_by_its_elf_headers(tmp_path):
    lib = _copy_truncated(CPU_LIB, tmp_path, CPU_LIB.name, keep=0.9, manifest=False)
    assert "is truncated" in _libcheck.problem(lib, "cpu")
    res = _python(CONV, tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("numpy"), res.stderr[-2000:]


@needs_cpu_lib
def test_same_size_corruption_is_refused_by_the_recorded_sha256(tmp_path):
    manifest = json.loads((NATIVE / "build_info.json").read_text())
    if "sha256" not in manifest.get("cpu", {}):
        pytest.skip("the library was built before build.py recorded sha256; rebuild it")
    lib = _copy_truncated(CPU_LIB, tmp_path, CPU_LIB.name, keep=1.0)
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the code, past every header
    lib.write_bytes(bytes(data))
    assert _libcheck.elf_problem(lib) is None
    assert "sha256" in _libcheck.problem(lib, "cpu")
    res = _python("from keydnn.infrastructure.backends.native_cpu import _lib\n"
                  "try:\n    _lib.load()\nexcept Exception as e:\n    print(type(e).__name__, e)\n", tmp_path)
    assert res.stdout.startswith("NativeLibraryError load: libkeydnn_cpu error:") and "sha256" in res.stdout


@needs_cpu_lib
def test_build_manifest_records_each_library_size_and_sha256():
    manifest = json.loads((NATIVE / "build_info.json").read_text())
    for key, entry in manifest.items():
        if entry.get("built") and (NATIVE / entry["path"]).exists():
            lib = NATIVE / entry["path"]
            assert entry["size"] == lib.stat().st_size, key
            assert entry["sha256"] == _libcheck.sha256(lib), key
            assert _libcheck.problem(lib, key) is None


def test_a_file_that_is_not_a_library_is_named_as_such(tmp_path):
    (tmp_path / "empty.so").write_bytes(b"")
    (tmp_path / "garbage.so").write_bytes(b"not a library at all" * 10)
    assert "is not an ELF shared library" in _libcheck.problem(tmp_path / "empty.so", "cpu")
    assert "is not an ELF shared library" in _libcheck.problem(tmp_path / "garbage.so", "cpu")


def _cuda_candidates() -> list:
    """The real CUDA library when built; else an ELF file under its name, enough for the pre-load check."""
    real = NATIVE / "libkeydnn_cuda.so"
    if real.exists():
        return [pytest.param(real, id="built-cuda-library")]
    return [pytest.param(CPU_LIB, id="elf-stand-in", marks=needs_cpu_lib)]


@pytest.mark.parametrize("source", _cuda_candidates())
def test_truncated_cuda_library_makes_cuda_unavailable_with_the_reason(tmp_path, source):
    _copy_truncated(source, tmp_path, "libkeydnn_cuda.so")
    res = _python("from keydnn.infrastructure.backends.cuda import _lib\nprint(_lib.lib is None, _lib.load_error)",
                  tmp_path)
    assert res.returncode == 0, f"exit {res.returncode} (-7 is the Bus error): {res.stderr[-2000:]}"
    assert res.stdout.startswith("True ") and "libkeydnn_cuda.so is truncated" in res.stdout, res.stdout


def test_missing_cpu_library_says_how_to_build_it_once(tmp_path):
    res = _python(CONV, tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("numpy"), res.stderr[-2000:]
    warning = next(line for line in res.stderr.splitlines() if "native CPU library not loaded" in line)
    assert warning.count("build it with") == 1 and "nox -s build_native" in warning, warning


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_driver_present() or ctypes.util.find_library("cuda") is not None,
                    reason="an NVIDIA driver is installed here")
def test_without_a_driver_the_error_says_so_and_names_the_call():
    from keydnn import Device, Tensor
    from keydnn.domain.errors import DeviceNotSupportedError
    from keydnn.infrastructure.backends import cuda

    assert cuda.unavailable_reason().startswith("no NVIDIA driver found")
    calls = {"Tensor.rand": lambda: Tensor.rand((2, 2), device=Device("cuda:0")),
             "Tensor.zeros": lambda: Tensor.zeros((2,), device=Device("cuda:0")),
             "Tensor.to": lambda: Tensor.zeros((2,)).to(Device("cuda:0"))}
    for name, call in calls.items():
        with pytest.raises(DeviceNotSupportedError) as err:
            call()
        assert err.value.op == name
        assert str(err.value).startswith(f"{name}: not available on device cuda:0 (no NVIDIA driver found")
