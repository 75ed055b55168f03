"""Where to look for NVIDIA's shared libraries (cuBLAS, cuDNN): env var, dynamic loader, the usual dirs.

Only paths are computed here; the binding modules do the loading and say what was tried when it fails.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path


def _site_lib_dirs() -> list[Path]:
    # torch and the nvidia-*-cu1x wheels ship their own copies; find them without importing torch.
    dirs: list[Path] = []
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "lib")
    try:
        nvidia = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        nvidia = None
    for root in (nvidia.submodule_search_locations or []) if nvidia is not None else []:
        dirs.extend(Path(p) for p in sorted(glob.glob(os.path.join(root, "*", "lib"))))
    return dirs


def _unique_dirs(dirs: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    return [d for d in dirs if d.is_dir() and not (d in seen or seen.add(d))]


def library_dirs() -> list[Path]:
    """System directories searched after the loader's own path, newest CUDA toolkit first."""
    toolkits = sorted(glob.glob("/usr/local/cuda*"), reverse=True)
    dirs = [Path("/usr/local/cuda/lib64")]
    for t in toolkits:
        dirs += [Path(t) / "lib64", Path(t) / "targets" / "x86_64-linux" / "lib"]
    dirs += [Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib64")]
    return _unique_dirs(dirs)


def candidates(env_var: str, names: list[str]) -> list[str]:
    """Load candidates in order: $env_var (a file, or a dir holding one of ``names``), the copies the
    interpreter's wheels ship (torch/lib, nvidia-*/lib), bare names (the dynamic loader), system dirs.

    The wheels come before the loader's own path because one process holds one copy of a soname: with
    KeyDNN's cuDNN taken from /usr/lib (9.14 on the H200 machine) and torch's from its wheel (9.19), the
    first to load serves both, and torch then refuses to run cuDNN ("cuDNN version incompatibility",
    seen in tests/cuda/test_cudnn_rnn.py on the H200). Taking the wheel's copy first, KeyDNN and PyTorch use
    the same library in one process, as the CUDA image (which installs only the wheels) always does."""
    found: list[str] = []
    override = os.environ.get(env_var)
    if override:
        p = Path(override)
        found += [str(p / n) for n in names if (p / n).exists()] if p.is_dir() else [str(p)]
    for d in _unique_dirs(_site_lib_dirs()):
        found += [str(d / n) for n in names if (d / n).exists()]
    found += names
    for d in library_dirs():
        found += [str(d / n) for n in names if (d / n).exists()]
    return found
