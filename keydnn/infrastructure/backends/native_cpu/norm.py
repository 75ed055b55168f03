"""Native batch/layer normalisation kernels (libkeydnn_cpu), same signatures as backends/numpy/norm.py."""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.backends.native_cpu import _lib
from keydnn.infrastructure.backends.numpy import norm as ref
from keydnn.infrastructure.backends.numpy.norm import batch_norm_axes, check_norm_params, layer_norm_axes


def _contiguous(*arrays: np.ndarray | None) -> list[np.ndarray | None]:
    return [None if a is None else np.ascontiguousarray(a) for a in arrays]


def _check_grad(op: str, gy: np.ndarray, x: np.ndarray) -> None:
    if gy.shape != x.shape or gy.dtype != x.dtype:
        raise ShapeError(op, f"gradient {gy.shape} {gy.dtype} does not match input {x.shape} {x.dtype}",
                         gy, x)


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    op = "batch_norm_forward"
    batch_norm_axes(op, x.shape)
    check_norm_params(op, x, (x.shape[1],), gamma, beta)
    if x.dtype not in _lib.SUFFIX:
        return ref.batch_norm_forward(x, gamma, beta, eps)
    x, gamma, beta = _contiguous(x, gamma, beta)
    n, c = x.shape[:2]
    y = np.empty_like(x)
    mean, invstd = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)
    _lib.call(op, "keydnn_batch_norm_forward", x.dtype, x, gamma, beta, n, c, x.size // (n * c), float(eps),
              y, mean, invstd)
    return y, mean, invstd


def batch_norm_backward(gy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, mean: np.ndarray,
                        invstd: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    op = "batch_norm_backward"
    batch_norm_axes(op, x.shape)
    check_norm_params(op, x, (x.shape[1],), gamma, mean, invstd)
    _check_grad(op, gy, x)
    if x.dtype not in _lib.SUFFIX:
        return ref.batch_norm_backward(gy, x, gamma, mean, invstd)
    gy, x, gamma, mean, invstd = _contiguous(gy, x, gamma, mean, invstd)
    n, c = x.shape[:2]
    gx = np.empty_like(x)
    ggamma = None if gamma is None else np.empty(c, dtype=x.dtype)
    gbeta = None if gamma is None else np.empty(c, dtype=x.dtype)
    _lib.call(op, "keydnn_batch_norm_backward", x.dtype, gy, x, gamma, mean, invstd, n, c,
              x.size // (n * c), gx, ggamma, gbeta)
    return gx, ggamma, gbeta


def layer_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, n_axes: int,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    op = "layer_norm_forward"
    layer_norm_axes(op, x.shape, n_axes)
    check_norm_params(op, x, tuple(x.shape[x.ndim - n_axes:]), gamma, beta)
    if x.dtype not in _lib.SUFFIX:
        return ref.layer_norm_forward(x, gamma, beta, n_axes, eps)
    x, gamma, beta = _contiguous(x, gamma, beta)
    lead = x.shape[:x.ndim - n_axes]
    m = x.size // max(1, int(np.prod(lead))) if x.size else int(np.prod(x.shape[x.ndim - n_axes:]))
    rows = int(np.prod(lead))
    y = np.empty_like(x)
    stats_shape = lead + (1,) * n_axes
    mean, invstd = np.empty(stats_shape, dtype=x.dtype), np.empty(stats_shape, dtype=x.dtype)
    _lib.call(op, "keydnn_layer_norm_forward", x.dtype, x, gamma, beta, rows, m, float(eps), y, mean, invstd)
    return y, mean, invstd


def layer_norm_backward(gy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, mean: np.ndarray,
                        invstd: np.ndarray, n_axes: int
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    op = "layer_norm_backward"
    layer_norm_axes(op, x.shape, n_axes)
    norm_shape = tuple(x.shape[x.ndim - n_axes:])
    check_norm_params(op, x, norm_shape, gamma)
    _check_grad(op, gy, x)
    lead = x.shape[:x.ndim - n_axes]
    rows, m = int(np.prod(lead)), int(np.prod(norm_shape))
    if x.dtype not in _lib.SUFFIX or mean.size != rows or invstd.size != rows:
        return ref.layer_norm_backward(gy, x, gamma, mean, invstd, n_axes)
    gy, x, gamma, mean, invstd = _contiguous(gy, x, gamma, mean, invstd)
    mean, invstd = mean.astype(x.dtype, copy=False), invstd.astype(x.dtype, copy=False)
    gx = np.empty_like(x)
    ggamma = None if gamma is None else np.empty(norm_shape, dtype=x.dtype)
    gbeta = None if gamma is None else np.empty(norm_shape, dtype=x.dtype)
    _lib.call(op, "keydnn_layer_norm_backward", x.dtype, gy, x, gamma, mean, invstd, rows, m,
              gx, ggamma, gbeta)
    return gx, ggamma, gbeta
