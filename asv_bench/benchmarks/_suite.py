"""asv benchmark classes generated from the op registry: one class per op in its family's module
(``bench_<family>.py``), params backend x dtype x size, ``version`` from the op's registry entry.

Why one class per op rather than an ``op`` parameter: asv runs an old commit by parameter *index* into the
class's params as that commit's code builds them, so an op list that grows over history would file one op's
numbers under another's name. A class per op keeps each op's line stable.

The timing code is keydnn.bench's. When the commit being measured predates a keydnn.bench module, the module
is loaded from this checkout (as asv does with the benchmarks themselves), so history is measured with one
harness.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUITE_VERSION = "1"  # bump when the timing method changes, so old and new numbers are not drawn as one line
DTYPES = ("float32", "float64")


def bench_module(name: str) -> Any:
    """keydnn.bench.<name> from the installed keydnn, else from this checkout's keydnn/bench/<name>.py."""
    try:
        return importlib.import_module(f"keydnn.bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"keydnn.bench.{name}", "keydnn.bench"):
            raise
    key = f"_asv_tree_keydnn_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "keydnn" / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


ops = bench_module("ops")


def _skips(params: list, keep: tuple[str, ...]) -> list[tuple]:
    """Every parameter tuple whose backend (the first parameter) is not in ``keep``."""
    return [p for p in itertools.product(*params) if p[0] not in keep]


class _Timed:
    """asv timing attributes shared by every benchmark here, sized so a CPU pass fits a 2-core machine's
    budget; the canary asks for more rounds (``-a rounds=N``) where it needs less noise."""

    rounds = 1
    repeat = (3, 10, 0.4)  # min samples, max samples, max seconds per round
    warmup_time = 0.02
    min_run_count = 2
    timeout = 300


_CASE: dict[str, Any] = {}  # the last prepared case per process (inputs are rebuilt when params change)


class _OpBenchmark(_Timed):
    spec: Any = None
    params = [list(ops.BACKENDS), list(DTYPES), list(ops.SIZES)]
    param_names = ["backend", "dtype", "size"]

    def setup(self, backend: str, dtype: str, size: str) -> None:
        self._active = None
        key = (self.spec.name, backend, dtype, size)
        if _CASE.get("key") != key:
            _CASE.clear()
            _CASE.update(key=key, case=ops.op_case(self.spec, backend, dtype, size))
        self.case = _CASE["case"]
        self._active = self.case.active()
        self._active.__enter__()

    def teardown(self, backend: str, dtype: str, size: str) -> None:
        if getattr(self, "_active", None) is not None:  # asv tears down after a skipped setup too
            self._active.__exit__(None, None, None)
            self._active = None

    def time_forward(self, backend: str, dtype: str, size: str) -> None:
        self.case.forward()
        if self.case.sync:
            self.case.sync()

    def time_forward_backward(self, backend: str, dtype: str, size: str) -> None:
        self.case.forward_backward()
        if self.case.sync:
            self.case.sync()

    def peakmem_forward_backward(self, backend: str, dtype: str, size: str) -> None:
        self.case.forward_backward()

    def track_forward_cuda_seconds(self, backend: str, dtype: str, size: str) -> float:
        return bench_module("events").event_timing(self.case.forward).median

    def track_forward_backward_cuda_seconds(self, backend: str, dtype: str, size: str) -> float:
        return bench_module("events").event_timing(self.case.forward_backward).median


# asv skips these parameter tuples without running setup: peakmem is the CPU's, CUDA-event seconds the GPU's.
for _name in ("track_forward_cuda_seconds", "track_forward_backward_cuda_seconds"):
    getattr(_OpBenchmark, _name).skip_params = _skips(_OpBenchmark.params, ("cuda",))
    getattr(_OpBenchmark, _name).unit = "seconds"
_OpBenchmark.peakmem_forward_backward.skip_params = _skips(_OpBenchmark.params, ("numpy", "native"))


def op_class(spec: Any, module: str) -> type:
    """The asv class of one registry op; a non-differentiable op gets no backward benchmarks."""
    body: dict[str, Any] = {"spec": spec, "version": f"{SUITE_VERSION}.{ops.version(spec)}",
                            "__module__": module, "__doc__": f"Registry op {spec.name!r} ({spec.family})."}
    if not spec.differentiable:
        body.update(time_forward_backward=None, peakmem_forward_backward=None,
                    track_forward_backward_cuda_seconds=None)
    return type(spec.name, (_OpBenchmark,), body)


def family_benchmarks(family: str, module: str) -> dict[str, type]:
    """Classes of every registry op of ``family``; an empty family is an error (a stale module)."""
    from keydnn.infrastructure.registry import all_specs

    classes = {s.name: op_class(s, module) for s in all_specs() if s.family == family}
    if not classes:
        raise ImportError(f"asv_bench: the registry has no ops of family {family!r} (remove bench_{family}.py)")
    return classes


def check_coverage() -> None:
    """Fail the import of the suite when a registry op's family has no bench_<family>.py module."""
    from keydnn.infrastructure.registry import all_specs

    covered = {p.stem[len("bench_"):] for p in Path(__file__).parent.glob("bench_*.py")}
    missing = sorted({f"{s.name} ({s.family})" for s in all_specs() if s.family not in covered})
    if missing:
        raise ImportError("asv_bench: registry ops without a benchmark (add asv_bench/benchmarks/"
                          f"bench_<family>.py): {', '.join(missing)}")
