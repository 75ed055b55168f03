"""parity.csv: every registry op on every backend and dtype, forward and each input gradient, against the NumPy
reference, PyTorch (answers from the torch worker process), the CPU (for CUDA rows) and float64 finite
differences; with the tolerance, pass/fail and the kernels that ran."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from keydnn.infrastructure.backends import use_cpu_backend
from keydnn.infrastructure.registry import OpSpec, Sample, reference, to_inputs
from keydnn.report.kernels import traced
from keydnn.report.samples import float_positions, samples_for, weight_for

COLUMNS = ["op", "family", "backend", "dtype", "phase", "samples", "kernels", "rtol", "atol",
           "ref_max_abs", "ref_max_rel", "ref_err_over_tol", "torch_max_abs", "torch_max_rel",
           "torch_err_over_tol", "cpu_cuda_max_abs", "cpu_cuda_err_over_tol", "fd_grad_err", "fd_tol",
           "err_over_tol", "passed", "note"]
FD_EPS = 1e-6


def compare(actual: Any, expected: Any, rtol: float, atol: float) -> tuple[float, float, float]:
    """(max abs error, max abs error / max |expected|, max of |a - e| / (atol + rtol |e|)); inf on a shape
    mismatch. NaN matching NaN and equal infinities count as agreement."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return math.inf, math.inf, math.inf
    if a.size == 0:
        return 0.0, 0.0, 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.atleast_1d(np.abs(a - e))
        d[np.atleast_1d((a == e) | (np.isnan(a) & np.isnan(e)))] = 0.0
        d[np.isnan(d)] = math.inf
        scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
        ratio = np.where(d == 0, 0.0, d / (atol + rtol * np.atleast_1d(np.abs(e))))
    worst = float(d.max())
    return worst, worst / scale if scale > 0 else worst, float(np.where(np.isnan(ratio), math.inf, ratio).max())


@contextlib.contextmanager
def on_backend(backend: str) -> Iterator[str]:
    """Select a backend ("numpy", "native" or "cuda:N"); yields the device string tensors go to."""
    if backend.startswith("cuda"):
        yield backend
    else:
        with use_cpu_backend(backend):
            yield "cpu"


def evaluate(spec: OpSpec, sample: Sample, dtype: str, device: str, weight: np.ndarray | None):
    """(forward output, input gradients of sum(out * weight), forward kernels, backward kernels)."""
    from keydnn import Tensor

    grad = spec.differentiable and weight is not None
    dev = None if device == "cpu" else device
    with traced(device) as trace:
        inputs = to_inputs(sample, dtype, dev, requires_grad=grad)
        out = spec.fn(*inputs, **sample.kwargs)
        out_np = out.to_numpy().copy()
        fwd = trace.labels()
        trace.reset()
        grads = []
        if grad:
            out.backward(Tensor(data=weight.astype(out.dtype), device=out.device))  # d sum(out * w) / d inputs
            grads = [inputs[i].grad.to_numpy().copy() if inputs[i].grad is not None
                     else np.zeros(sample.args[i].shape) for i in float_positions(sample)]
        bwd = trace.labels() if grad else ""
    return out_np, grads, fwd, bwd


def fd_error(spec: OpSpec, sample: Sample, device: str, weight: np.ndarray, rng: np.random.Generator) -> float:
    """Chainer-style float64 check: |analytic - numeric| / max(1, |numeric|, |analytic|) of the directional
    derivative of sum(op(x) * w) along a random direction (worst of two directions)."""
    dev = None if device == "cpu" else device
    positions = float_positions(sample)
    _, grads, _, _ = evaluate(spec, sample, "float64", device, weight)
    worst = 0.0
    for _ in range(2):
        dirs = {i: rng.standard_normal(sample.args[i].shape) for i in positions}

        def f(sign: float) -> float:
            args = list(sample.args)
            for i in positions:
                args[i] = np.asarray(sample.args[i] + sign * FD_EPS * dirs[i])
            out = spec.fn(*to_inputs(Sample(tuple(args), sample.kwargs), "float64", dev), **sample.kwargs)
            return float(np.sum(out.to_numpy() * weight))

        numeric = (f(1.0) - f(-1.0)) / (2 * FD_EPS)
        analytic = sum(float(np.sum(g * dirs[i])) for g, i in zip(grads, positions))
        worst = max(worst, abs(numeric - analytic) / max(1.0, abs(numeric), abs(analytic)))
    return worst


class _Phase:
    """Worst errors of one (op, backend, dtype, phase) over the samples."""

    def __init__(self) -> None:
        self.m: dict[str, float] = {}
        self.kernels: dict[str, None] = {}
        self.notes: list[str] = []
        self.n = 0

    def add(self, prefix: str, errs: tuple[float, ...]) -> None:
        names = ("max_abs", "max_rel", "err_over_tol") if len(errs) == 3 else ("max_abs", "err_over_tol")
        for name, v in zip(names, errs):
            key = f"{prefix}_{name}"
            self.m[key] = max(self.m.get(key, 0.0), v)


def _cpu_default(backends: list[str]) -> str | None:
    cpu = [b for b in backends if not b.startswith("cuda")]
    return "native" if "native" in cpu else (cpu[0] if cpu else None)


def check_op(spec: OpSpec, dtype: str, backends: list[str], torch_answers: list[dict] | None,
             grad_refs: dict[int, list[np.ndarray]] | None = None) -> list[dict[str, Any]]:
    """parity.csv rows of one op and dtype on each backend (see COLUMNS)."""
    rtol, atol = spec.tol[dtype]
    samples = samples_for(spec, dtype)
    cpu_base = _cpu_default(backends)
    cpu_results: dict[int, tuple] = {}
    rows = []
    # Gradient reference: the NumPy backend in float64 (itself checked against finite differences).
    if grad_refs is None and spec.differentiable:
        grad_refs = {}
        with on_backend("numpy") as dev:
            for k, s in enumerate(samples):
                with contextlib.suppress(Exception):
                    w = weight_for(spec, dtype, k, reference(spec, s).shape)
                    grad_refs[k] = evaluate(spec, s, "float64", dev, w)[1]
    order = sorted(backends, key=lambda b: b != cpu_base)  # the CPU result CUDA rows compare with comes first
    for backend in order:
        phases: dict[str, _Phase] = {}

        def phase(name: str) -> _Phase:
            return phases.setdefault(name, _Phase())

        with on_backend(backend) as dev:
            for k, s in enumerate(samples):
                expected = reference(spec, s)
                w = weight_for(spec, dtype, k, expected.shape) if spec.differentiable else None
                try:
                    out, grads, fwd, bwd = evaluate(spec, s, dtype, dev, w)
                except Exception as exc:  # a failing op is a failed row, not a crashed report
                    phase("forward").notes.append(f"[{s.label}] {type(exc).__name__}: {exc}")
                    continue
                if backend == cpu_base:
                    cpu_results[k] = (out, grads)
                names = [f"grad:arg{i}" for i in float_positions(s)] if spec.differentiable else []
                for pname, actual, kern, ref in [("forward", out, fwd, expected)] + [
                        (n, g, bwd, (grad_refs or {}).get(k, [None] * len(names))[j])
                        for j, (n, g) in enumerate(zip(names, grads))]:
                    p = phase(pname)
                    p.n += 1
                    p.kernels.setdefault(kern, None)
                    self_ref = pname != "forward" and backend == "numpy" and dtype == "float64"
                    if ref is not None and not self_ref:
                        p.add("ref", compare(actual, ref, rtol, atol))
                    answer = torch_answers[k] if torch_answers and k < len(torch_answers) else None
                    if answer is not None and "error" not in answer:
                        theirs = answer["out"] if pname == "forward" else answer["grads"][names.index(pname)]
                        p.add("torch", compare(actual, theirs, rtol, atol))
                    elif answer is not None and pname == "forward":
                        p.notes.append(f"torch: {answer['error']}")
                    if backend.startswith("cuda") and k in cpu_results:
                        c_out, c_grads = cpu_results[k]
                        mine = c_out if pname == "forward" else c_grads[names.index(pname)]
                        p.add("cpu_cuda", compare(actual, mine, rtol, atol)[::2])
                if dtype == "float64" and spec.differentiable:
                    try:
                        fd = fd_error(spec, s, dev, w, np.random.default_rng(k))
                    except Exception as exc:
                        phase("forward").notes.append(f"fd [{s.label}]: {type(exc).__name__}: {exc}")
                        continue
                    for n in names:
                        phase(n).m["fd_grad_err"] = max(phase(n).m.get("fd_grad_err", 0.0), fd)
        for pname, p in phases.items():
            rows.append(_row(spec, backend, dtype, pname, p, rtol, atol))
    return rows


def _row(spec: OpSpec, backend: str, dtype: str, pname: str, p: _Phase, rtol: float, atol: float) -> dict:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
    row.update(op=spec.name, family=spec.family, backend=backend, dtype=dtype, phase=pname, samples=p.n,
               kernels=" | ".join(p.kernels), rtol=rtol, atol=atol, note="; ".join(p.notes)[:500])
    row.update(p.m)
    fd_tol = spec.grad_tol * 10
    if "fd_grad_err" in p.m:
        row["fd_tol"] = fd_tol
    ratios = [p.m[k] for k in ("ref_err_over_tol", "torch_err_over_tol", "cpu_cuda_err_over_tol") if k in p.m]
    if "fd_grad_err" in p.m:
        ratios.append(p.m["fd_grad_err"] / fd_tol)
    row["err_over_tol"] = max(ratios) if ratios else math.nan
    # A note that only says PyTorch could not run a sample does not fail KeyDNN's row.
    failures = [n for n in p.notes if not n.startswith("torch:")]
    row["passed"] = p.n > 0 and bool(ratios) and max(ratios) <= 1.0 and not failures
    return row


def run_parity(specs: list[OpSpec], backends: list[str], torch_answers: Callable[[OpSpec, str], Any],
               progress: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    rows = []
    for spec in specs:
        for dtype in spec.dtypes:
            progress(f"parity {spec.name} {dtype}")
            rows += check_op(spec, dtype, backends, torch_answers(spec, dtype))
    return rows
