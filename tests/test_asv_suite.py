"""The asv suite generated from the op registry: a class per op with a registry-derived version, impossible
combinations skipped (NotImplementedError), every op's calls runnable, and the import failing on an op
that has no benchmark. Imports without a GPU (this file runs on machines without one)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from keydnn.bench import ops
from keydnn.infrastructure.registry import REGISTRY, OpSpec, Sample, all_specs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(ROOT / "asv_bench"))
    try:
        pkg = importlib.import_module("benchmarks")
        modules = {p.stem: importlib.import_module(f"benchmarks.{p.stem}")
                   for p in (ROOT / "asv_bench" / "benchmarks").glob("bench_*.py")}
        yield pkg, modules
    finally:
        sys.path.remove(str(ROOT / "asv_bench"))


def test_every_registry_op_has_a_bench_sample_and_a_class(suite):
    _, modules = suite
    specs = all_specs()
    assert [s.name for s in specs if s.bench is None] == []
    for spec in specs:
        cls = getattr(modules[f"bench_{spec.family}"], spec.name)
        assert cls.spec is spec and cls.__module__ == f"benchmarks.bench_{spec.family}"
        assert hasattr(cls, "time_forward")
        assert callable(getattr(cls, "time_forward_backward", None)) == spec.differentiable


def test_versions_come_from_the_registry_entry(suite):
    _, modules = suite
    add, sub = modules["bench_elementwise"].add, modules["bench_elementwise"].sub
    assert add.version != sub.version and add.version.endswith(ops.version(REGISTRY["add"]))
    assert ops.version(REGISTRY["add"]) == ops.version(REGISTRY["add"])  # deterministic (seeded samples)
    spec = REGISTRY["add"]
    bigger = OpSpec(**{**vars(spec), "bench": lambda dt, rng: Sample((np.ones((2048, 1024)), np.ones((2048, 1024))))})
    assert ops.version(bigger) != ops.version(spec)  # a new benchmark shape starts a new line


def test_import_fails_when_an_op_has_no_benchmark(suite, monkeypatch):
    pkg, _ = suite
    from benchmarks import _suite
    monkeypatch.setitem(REGISTRY, "brand_new_op", OpSpec("brand_new_op", "brand_new_family", lambda a: a,
                                                        lambda a: a, lambda dt, rng: []))
    with pytest.raises(ImportError, match=r"brand_new_op \(brand_new_family\)"):
        _suite.check_coverage()
    with pytest.raises(ImportError, match="no ops of family 'gone'"):
        _suite.family_benchmarks("gone", "benchmarks.bench_gone")


def test_cpu_only_and_cuda_only_methods_are_skipped_by_parameter(suite):
    _, modules = suite
    cls = modules["bench_conv"].conv2d
    assert all(p[0] == "cuda" for p in cls.peakmem_forward_backward.skip_params)
    assert all(p[0] != "cuda" for p in cls.track_forward_cuda_seconds.skip_params)
    assert cls.track_forward_cuda_seconds.unit == "seconds"


def test_impossible_combinations_raise_not_implemented():
    with pytest.raises(NotImplementedError, match="float64"):
        ops.op_case(REGISTRY["astype_f64"], "numpy", "float64", "small")
    with pytest.raises(NotImplementedError, match="NumPy's kernels"):
        ops.op_case(REGISTRY["add"], "native", "float32", "small")
    from keydnn.infrastructure.backends import cuda
    if not cuda.is_available():
        with pytest.raises(NotImplementedError, match="no CUDA"):
            ops.op_case(REGISTRY["add"], "cuda", "float32", "small")


def test_native_case_uses_a_native_kernel_and_restores_the_backend():
    from keydnn.infrastructure import backends
    before = backends.cpu_backend_name()
    case = ops.op_case(REGISTRY["conv2d"], "native", "float32", "small")
    assert backends.cpu_backend_name() == before
    with case.active():
        assert backends.cpu_backend_name() == "native"
        used = ops.kernels_used(case.forward)
    assert "conv2d_forward" in used


@pytest.mark.parametrize("name", sorted(s.name for s in all_specs()))
def test_every_op_case_runs_forward_and_backward(name):
    spec = REGISTRY[name]
    case = ops.op_case(spec, "numpy", spec.dtypes[0], "small")
    with case.active():
        out = case.forward()
        expected = spec.fn(*[a for a in case_inputs(spec)], **ops.sample_for(spec, spec.dtypes[0], "small").kwargs)
        np.testing.assert_allclose(out.numpy(), expected.numpy())
        if spec.differentiable:
            y = case.forward_backward()
            assert y.shape == out.shape


def case_inputs(spec):
    from keydnn.infrastructure.registry import to_inputs
    return to_inputs(ops.sample_for(spec, spec.dtypes[0], "small"), np.dtype(spec.dtypes[0]))
