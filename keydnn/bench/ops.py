"""One registry op made ready to time: inputs on a backend (numpy, native, cuda) in a dtype at a size, a
forward call, a forward+backward call, and the synchronisation its device needs. asv_bench/, scripts/ and
the report build their op timings from ``op_case``.

A combination that cannot run raises NotImplementedError with the reason (asv reports it as skipped): a
dtype the op does not take, no CUDA device, no native CPU library, an op the native table runs with NumPy's
kernels (timing it again would only repeat the numpy row), backward of a non-differentiable op, or a size
its registry entry gives no sample for.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = ("numpy", "native", "cuda")
SIZES = ("small", "large")  # the largest test sample (dispatch-bound) and the entry's ``bench`` sample


def sample_for(spec: Any, dtype: str, size: str, seed: int = 0) -> Any:
    """The registry sample of ``size``: "small" is the largest test sample, "large" the ``bench`` one."""
    rng = np.random.default_rng(seed)
    if size == "large":
        if spec.bench is None:
            raise NotImplementedError(f"{spec.name}: its registry entry has no bench sample")
        return spec.bench(np.dtype(dtype), rng)
    if size != "small":
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    samples = spec.samples(np.dtype(dtype), rng)
    return max(samples, key=lambda s: sum(np.size(a) for a in s.args if isinstance(a, np.ndarray)))


def describe(spec: Any) -> str:
    """What an op's benchmark measures, as text: a change to it (new shapes, dtypes) changes the version."""
    parts = [spec.name, spec.family, ",".join(spec.dtypes), str(spec.differentiable)]
    for size in SIZES:
        try:
            s = sample_for(spec, spec.dtypes[0], size)
        except NotImplementedError:
            parts.append(f"{size}:none")
            continue
        shapes = [f"{a.dtype.kind}{a.shape}" if isinstance(a, np.ndarray) else repr(a) for a in s.args]
        parts.append(f"{size}:{shapes}:{sorted(s.kwargs.items(), key=str)}")
    return "|".join(parts)


def version(spec: Any) -> str:
    return hashlib.sha256(describe(spec).encode()).hexdigest()[:16]


class _Recorder:
    """A kernel table that notes which kernels are looked up on it."""

    def __init__(self, table: Any) -> None:
        self._table, self.used = table, set()

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self._table, name)


def kernels_used(run: Callable[[], Any]) -> set[str]:
    """Names of the CPU-table kernels ``run`` calls (run once with a recording table installed)."""
    from keydnn.infrastructure import backends

    table = backends.cpu_table()
    recorder = _Recorder(table)
    backends._Tables.cpu = recorder
    try:
        run()
    finally:
        backends._Tables.cpu = table
    return recorder.used


@dataclass
class OpCase:
    """A prepared op call. Its calls run on the CPU table of ``backend`` only inside ``active()``."""

    name: str
    backend: str
    forward: Callable[[], Any] = lambda: None
    forward_backward: Callable[[], Any] | None = None
    sync: Callable[[], None] | None = None
    device: str = "cpu"

    def active(self) -> contextlib.AbstractContextManager:
        if self.backend == "cuda":
            return contextlib.nullcontext()
        from keydnn.infrastructure.backends import use_cpu_backend
        return use_cpu_backend(self.backend)


def _calls(spec: Any, sample: Any, dtype: str, device: str | None, grad: bool):
    from keydnn.infrastructure.registry import to_inputs

    inputs = to_inputs(sample, np.dtype(dtype), device=device, requires_grad=grad)
    fn, kwargs = spec.fn, sample.kwargs

    def forward() -> Any:
        return fn(*inputs, **kwargs)

    if not grad:
        return forward, None
    leaves = [t for t in inputs if getattr(t, "requires_grad", False)]
    out = forward()
    from keydnn import Tensor
    seed_grad = Tensor.ones_like(out)

    def forward_backward() -> Any:
        for t in leaves:
            t.grad = None
        y = fn(*inputs, **kwargs)
        y.backward(seed_grad)
        return y

    return forward, forward_backward


def op_case(spec: Any, backend: str, dtype: str, size: str, seed: int = 0) -> OpCase:
    """Build the timed calls for one registry op; NotImplementedError when the combination cannot run."""
    from keydnn.infrastructure import backends

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if dtype not in spec.dtypes:
        raise NotImplementedError(f"{spec.name} does not take {dtype}")
    sample = sample_for(spec, dtype, size, seed)
    case = OpCase(spec.name, backend)
    device = None
    if backend == "cuda":
        from keydnn.infrastructure.backends import cuda
        if not cuda.is_available():
            raise NotImplementedError(f"no CUDA: {cuda.unavailable_reason()}")
        device, case.device, case.sync = "cuda:0", "cuda:0", cuda.synchronize
    elif backend == "native" and backends.native_table() is None:
        raise NotImplementedError(f"native CPU library not loaded: {backends._Tables.native_error}")
    with case.active():
        case.forward, case.forward_backward = _calls(spec, sample, dtype, device, spec.differentiable)
        if backend == "native":
            used = kernels_used(case.forward_backward or case.forward)
            if not used & set(backends.native_table().native_kernels):
                raise NotImplementedError(f"{spec.name}: the native table runs NumPy's kernels for it "
                                          f"({', '.join(sorted(used))})")
    return case
