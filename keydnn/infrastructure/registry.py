"""The op registry: one entry per op (function, NumPy reference, sample inputs, tolerances, torch oracle,
error inputs, benchmark inputs, cost). Gradient checks, parity tests, benchmarks and reports iterate it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPEC_MODULES = ("keydnn.infrastructure.op_specs.core", "keydnn.infrastructure.op_specs.nn",
                "keydnn.infrastructure.op_specs.conv", "keydnn.infrastructure.op_specs.recurrent")


@dataclass(frozen=True)
class Sample:
    """Positional args (ndarrays become Tensors of the tested dtype unless integer/bool) and kwargs."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class ErrorSample:
    sample: Sample
    error: type
    match: str = ""


Tolerance = dict[str, tuple[float, float]]
DEFAULT_TOL: Tolerance = {"float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}


@dataclass
class OpSpec:
    name: str
    family: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    samples: Callable[[np.dtype, np.random.Generator], list[Sample]]
    dtypes: tuple[str, ...] = ("float32", "float64")
    differentiable: bool = True
    tol: Tolerance = field(default_factory=lambda: dict(DEFAULT_TOL))
    torch_fn: Callable[..., Any] | None = None
    errors: Callable[[], list[ErrorSample]] | None = None
    bench: Callable[[np.dtype, np.random.Generator], Sample] | None = None
    cost: Callable[[Sample], tuple[float, float]] | None = None  # (flops, bytes moved)
    grad_tol: float = 1e-6  # relative error allowed by the float64 finite-difference check


REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"op {spec.name!r} is registered twice")
    REGISTRY[spec.name] = spec
    return spec


def all_specs() -> list[OpSpec]:
    for module in SPEC_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return list(REGISTRY.values())


def to_inputs(sample: Sample, dtype: Any, device: Any = None, requires_grad: bool = False) -> list[Any]:
    """Tensors for a sample's ndarray args: float arrays in ``dtype`` (requiring grad if asked)."""
    from keydnn.infrastructure.tensor._tensor import Tensor

    out = []
    for a in sample.args:
        if isinstance(a, np.ndarray):
            float_arg = a.dtype.kind == "f"
            t = Tensor(data=a.astype(dtype) if float_arg else a, device=device)
            if float_arg and requires_grad:
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def reference(spec: OpSpec, sample: Sample) -> np.ndarray:
    args = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in sample.args]
    return np.asarray(spec.ref(*args, **sample.kwargs))


# ---- sample generators shared by families -------------------------------------------------------------
def rand(rng: np.random.Generator, *shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.asarray(rng.uniform(low, high, shape))


def away_from_zero(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return np.asarray(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


UNARY_SHAPES = ((), (7,), (3, 4), (2, 3, 4))
BINARY_SHAPES = (((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((3, 4), ()), ((1,), (2, 3)))


def unary_samples(low: float = -2.0, high: float = 2.0) -> Callable[[np.dtype, np.random.Generator], list]:
    def gen(dtype: np.dtype, rng: np.random.Generator) -> list[Sample]:
        out = [Sample((rand(rng, *s, low=low, high=high),), label=str(s)) for s in UNARY_SHAPES]
        out.append(Sample((rand(rng, 4, 3, low=low, high=high).T,), label="transposed"))
        return out
    return gen


def binary_samples(make_b: Callable | None = None) -> Callable[[np.dtype, np.random.Generator], list]:
    def gen(dtype: np.dtype, rng: np.random.Generator) -> list[Sample]:
        out = []
        for sa, sb in BINARY_SHAPES:
            b = make_b(rng, *sb) if make_b else rand(rng, *sb)
            out.append(Sample((rand(rng, *sa), b), label=f"{sa}x{sb}"))
        return out
    return gen
