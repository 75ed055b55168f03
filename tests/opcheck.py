"""Shared helpers for the registry-driven tests: run an op, compare, and check gradients numerically."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.infrastructure.registry import OpSpec, Sample, to_inputs


def run(spec: OpSpec, sample: Sample, dtype: str, device: Any = None, requires_grad: bool = False):
    inputs = to_inputs(sample, dtype, device, requires_grad)
    return inputs, spec.fn(*inputs, **sample.kwargs)


def float_positions(sample: Sample) -> list[int]:
    return [i for i, a in enumerate(sample.args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def analytic_grads(spec: OpSpec, sample: Sample, dtype: str, weight: np.ndarray, device: Any = None):
    """Gradients of sum(op(x) * weight) for each float input, as host arrays."""
    from keydnn import Tensor

    inputs, out = run(spec, sample, dtype, device, requires_grad=True)
    w = Tensor(data=weight.astype(out.dtype), device=out.device)
    (out * w).sum().backward()
    return out, [inputs[i].grad.to_numpy() if inputs[i].grad is not None else np.zeros(sample.args[i].shape)
                 for i in float_positions(sample)]


def directional_check(spec: OpSpec, sample: Sample, rng: np.random.Generator, eps: float = 1e-6,
                      device: Any = None) -> None:
    """Chainer-style check in float64: the analytic gradient dotted with a random direction must match the
    central finite difference of sum(op(x) * w) along that direction."""
    positions = float_positions(sample)
    out_shape = np.shape(np.asarray(spec.ref(*sample.args, **sample.kwargs)))
    weight = rng.standard_normal(out_shape)
    _, grads = analytic_grads(spec, sample, "float64", weight, device)
    for _ in range(2):
        dirs = {i: rng.standard_normal(sample.args[i].shape) for i in positions}

        def f(sign: float) -> float:
            args = list(sample.args)
            for i in positions:
                args[i] = np.asarray(sample.args[i] + sign * eps * dirs[i])
            _, out = run(spec, Sample(tuple(args), sample.kwargs), "float64", device)
            return float(np.sum(out.to_numpy() * weight))

        numeric = (f(1.0) - f(-1.0)) / (2 * eps)
        analytic = sum(float(np.sum(g * dirs[i])) for g, i in zip(grads, positions))
        scale = max(1.0, abs(numeric), abs(analytic))
        assert abs(numeric - analytic) <= spec.grad_tol * scale * 10, (
            f"{spec.name}[{sample.label}]: analytic {analytic!r} vs numeric {numeric!r}")


def assert_close(actual: np.ndarray, expected: np.ndarray, spec: OpSpec, dtype: str, what: str) -> None:
    rtol, atol = spec.tol[dtype]
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{spec.name} {what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual.astype(np.float64) if actual.dtype.kind == "f" else actual, expected,
                               rtol=rtol, atol=atol, err_msg=f"{spec.name} {what} ({dtype})")
