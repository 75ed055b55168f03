"""Architecture guardrails: small files, ctypes only in binding modules, no device tests in ops/ or nn/,
the domain free of NumPy and ctypes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keydnn"
MAX_LINES = 500
BINDING_MODULE = re.compile(r"_(lib|cudart|cublas|cudnn|cudnn_rnn|nccl)\.py$")


def _sources(*dirs: Path, pattern: str = "*.py"):
    for d in dirs:
        yield from (p for p in d.rglob(pattern) if ".nox" not in p.parts and ".asv" not in p.parts)


def test_no_source_file_over_500_lines():
    roots = [PACKAGE, ROOT / "native", ROOT / "tests", ROOT / "scripts", ROOT / "asv_bench"]
    big = [f"{p.relative_to(ROOT)}: {n}" for pat in ("*.py", "*.cpp", "*.cu", "*.h")
           for p in _sources(*[r for r in roots if r.exists()], pattern=pat)
           if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not big, f"files over {MAX_LINES} lines: {big}"


def test_ctypes_only_in_binding_modules():
    offenders = [str(p.relative_to(ROOT)) for p in _sources(PACKAGE)
                 if re.search(r"^\s*(import ctypes|from ctypes)", p.read_text(), re.M)
                 and not BINDING_MODULE.search(p.name)]
    assert not offenders, f"ctypes imported outside binding modules: {offenders}"


def test_ops_and_nn_never_test_the_device():
    dirs = [PACKAGE / "infrastructure" / d for d in ("ops", "nn", "optim") if (PACKAGE / "infrastructure" / d).exists()]
    pattern = re.compile(r"is_cuda\(\)|is_cpu\(\)|device\.type|DeviceType\.|\"cuda\" in|'cuda' in")
    offenders = [f"{p.relative_to(ROOT)}:{i + 1}" for p in _sources(*dirs)
                 for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    allowed = {"keydnn/infrastructure/ops/index.py"}  # an index tensor on the host may index device data
    offenders = [o for o in offenders if o.split(":")[0] not in allowed]
    assert not offenders, f"device tests in ops/nn (use the kernel table instead): {offenders}"


def test_domain_imports_neither_numpy_nor_ctypes():
    offenders = [str(p.relative_to(ROOT)) for p in _sources(PACKAGE / "domain")
                 if re.search(r"^\s*(import|from)\s+(numpy|ctypes)", p.read_text(), re.M)]
    assert not offenders
