"""The seed's five CPU-vs-CUDA scripts (scripts/bench_*_cpu_vs_cuda.py over keydnn.bench.cpu_vs_cuda): they
run from a clone with the seed's flags, keep the seed's defaults, print the CPU column without a GPU and
say why CUDA is absent; the CUDA branch (interleaving, --sanity, the unsynchronised mode) runs here with
the CPU standing in for the GPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keydnn.bench import cpu_vs_cuda

ROOT = Path(__file__).resolve().parent.parent
CONV = ["--N", "1", "--Cin", "2", "--Cout", "3", "--H", "6", "--W", "6"]
TINY = {
    "bench_linear_backward_cpu_vs_cuda.py": ["--batch", "4", "--in_features", "3", "--out_features", "2", "--no-bias"],
    "bench_pool2d_cpu_vs_cuda.py": ["--N", "1", "--C", "2", "--H", "4", "--W", "4"],
    "bench_conv2d_cpu_vs_cuda.py": [*CONV, "--stride", "2", "1", "--padding", "1"],
    "bench_conv2d_transpose_cpu_vs_cuda.py": [*CONV, "--stride", "2", "--outpad", "1"],
    "bench_tensor_ops_cpu_vs_cuda.py": ["--shape", "3", "4", "--ops", "add", "gt", "mul_scalar"],
}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cuda() -> tuple[str | None, str]:
    return cpu_vs_cuda.cuda_device(0)


@pytest.mark.parametrize("name", list(TINY))
def test_script_runs_from_a_clone_with_the_seed_flags(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script finds keydnn itself
    out = tmp_path / "table.md"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *TINY[name], "--dtype", "float64",
                          "--warmup", "0", "--repeats", "1", "--sanity", "--seed", "3", "--device", "0",
                          "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| Operation |" in res.stdout and "dtype: float64" in res.stdout and out.read_text() in res.stdout + "\n"
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith("| ") and not ln.startswith("| Operation")]
    assert rows and all(" us |" in r or " ms |" in r or " s |" in r for r in rows), rows
    device, why = _cuda()
    if device is None:
        assert f"CUDA: not measured: {why}" in res.stdout
        assert "sanity: not checked, CUDA is unavailable" in res.stdout
    else:
        assert "sanity: CPU and CUDA agree on all" in res.stdout


@pytest.fixture
def cpu_as_cuda(monkeypatch):
    """Run the runner's CUDA branch with the CPU as the second device."""
    monkeypatch.setattr(cpu_vs_cuda, "cuda_device", lambda index: ("cpu", ""))
    monkeypatch.setattr(cpu_vs_cuda, "synchronizer", lambda index: (lambda: None))


@pytest.mark.parametrize("sync", [True, False])
def test_cuda_branch_fills_both_columns_and_checks_agreement(cpu_as_cuda, sync, capsys):
    argv = ["--shape", "8", "8", "--repeats", "3", "--warmup", "1", "--sanity"] + (["--sync_each_iter"] * sync)
    text = _script("bench_tensor_ops_cpu_vs_cuda.py").main(argv)
    assert "sanity: CPU and CUDA agree on all 9 cases" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| Operation")]
    assert len(rows) == 9 and all(" - " not in r and r.endswith("x** |") for r in rows), rows
    assert ("incl. drain" in text) is (not sync)


@pytest.mark.parametrize("name", list(TINY))
def test_every_script_checks_and_times_both_devices(cpu_as_cuda, name):
    text = _script(name).main([*TINY[name], "--repeats", "2", "--warmup", "1", "--sanity"])
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| Operation")]
    assert f"sanity: CPU and CUDA agree on all {len(rows)} cases" in text
    assert all(" - " not in r for r in rows), rows


def test_sanity_fails_when_the_devices_disagree(cpu_as_cuda):
    calls = []

    def build(device):
        calls.append(device)
        t = cpu_vs_cuda_tensor(np.ones(4) * (1.0 if len(calls) == 1 else 1.01))
        return lambda: t

    args = cpu_vs_cuda.parser("x", warmup=0, repeats=1).parse_args(["--sanity", "--dtype", "float64"])
    with pytest.raises(AssertionError, match="--sanity: drift result 0: CUDA differs from CPU"):
        cpu_vs_cuda.run([cpu_vs_cuda.Case("drift", build)], args, title="t", config=[])


def cpu_vs_cuda_tensor(values):
    from keydnn import Tensor

    return Tensor.from_numpy(np.asarray(values))


def test_check_agree_tolerates_rounding_and_compares_masks():
    ref = cpu_vs_cuda_tensor(np.linspace(-3, 3, 50).astype(np.float32))
    near = cpu_vs_cuda_tensor(np.linspace(-3, 3, 50).astype(np.float32) * (1 + 1e-6))
    cpu_vs_cuda.check_agree("near", ref, near, "float32")
    mask = cpu_vs_cuda_tensor(np.array([True, False]))
    with pytest.raises(AssertionError):
        cpu_vs_cuda.check_agree("mask", mask, cpu_vs_cuda_tensor(np.array([True, True])), "float32")


def test_pairs_of_ints():
    assert cpu_vs_cuda.ints("stride", [2]) == (2, 2) and cpu_vs_cuda.ints("stride", [2, 1]) == (2, 1)
    with pytest.raises(SystemExit, match="--stride takes 1 to 2 integers"):
        cpu_vs_cuda.ints("stride", [1, 2, 3])


SEED_DEFAULTS = {
    "bench_linear_backward_cpu_vs_cuda.py": ("run", dict(batch=1024, in_features=1024, out_features=1024, bias=True,
                                                         warmup=10, repeats=50)),
    "bench_pool2d_cpu_vs_cuda.py": ("run", dict(N=8, C=32, H=64, W=64, k=2, s=2, p=0, warmup=10, repeats=50)),
    "bench_conv2d_cpu_vs_cuda.py": ("conv_run", dict(N=8, Cin=64, Cout=128, H=112, W=112, Kh=3, Kw=3, stride=[1],
                                                     padding=[1], bias=True, warmup=10, repeats=50)),
    "bench_conv2d_transpose_cpu_vs_cuda.py": ("conv_run", dict(N=8, Cin=64, Cout=128, H=56, W=56, outpad=[0],
                                                               warmup=10, repeats=50)),
    "bench_tensor_ops_cpu_vs_cuda.py": ("run", dict(shape=[512, 512], alpha=0.125, sync_each_iter=False, warmup=50,
                                                    repeats=200, ops=["add", "sub", "mul", "div", "gt", "neg", "exp",
                                                                      "add_scalar", "mul_scalar"])),
}


@pytest.mark.parametrize("name", list(SEED_DEFAULTS))
def test_defaults_are_the_seeds(name, monkeypatch):
    module, (runner, expected) = _script(name), SEED_DEFAULTS[name]
    seen = {}
    monkeypatch.setattr(module, runner, lambda *a, **k: seen.update(vars(a[1] if runner == "run" else a[0])))
    module.main([])
    common = dict(dtype="float32", sanity=False, seed=0, device=0)
    assert {k: seen[k] for k in {**common, **expected}} == {**common, **expected}
