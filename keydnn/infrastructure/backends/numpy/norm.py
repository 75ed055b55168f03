"""NumPy reference kernels for batch normalisation (over every axis but 1) and layer normalisation (over the
trailing ``n_axes``), forward and backward, with the biased variance. ``gamma``/``beta`` may be None
(no affine transform); their gradients are then None.
"""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError


def check_norm_params(op: str, x: np.ndarray, param_shape: tuple, *params: np.ndarray | None) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(op, f"expected a floating dtype, got {x.dtype}", x)
    for p in params:
        if p is None:
            continue
        if tuple(p.shape) != param_shape:
            raise ShapeError(op, f"parameter has shape {tuple(p.shape)}, expected {param_shape}", x, p)
        if p.dtype != x.dtype:
            raise DTypeError(op, f"parameter dtype {p.dtype} differs from input dtype {x.dtype}", x, p)


def batch_norm_axes(op: str, x_shape: tuple) -> tuple[int, ...]:
    """The reduced axes (all but the channel axis 1); at least (N, C) with N * spatial > 0."""
    if len(x_shape) < 2:
        raise ShapeError(op, f"input must be at least 2-D (N, C, ...), got shape {tuple(x_shape)}")
    if int(np.prod(x_shape)) == 0:
        raise ShapeError(op, f"cannot normalise an empty input of shape {tuple(x_shape)}")
    return (0,) + tuple(range(2, len(x_shape)))


def layer_norm_axes(op: str, x_shape: tuple, n_axes: int) -> tuple[int, ...]:
    if not isinstance(n_axes, (int, np.integer)) or not 1 <= n_axes <= len(x_shape):
        raise ShapeError(op, f"n_axes={n_axes!r} must be between 1 and the input's rank {len(x_shape)}")
    if int(np.prod(x_shape[len(x_shape) - n_axes:])) == 0:
        raise ShapeError(op, f"cannot normalise empty trailing dimensions of shape {tuple(x_shape)}")
    return tuple(range(len(x_shape) - n_axes, len(x_shape)))


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    op = "batch_norm_forward"
    axes = batch_norm_axes(op, x.shape)
    check_norm_params(op, x, (x.shape[1],), gamma, beta)
    mean = x.mean(axis=axes)
    xc = x - _channel(mean, x.ndim)
    invstd = (1.0 / np.sqrt((xc * xc).mean(axis=axes) + eps)).astype(x.dtype)
    scale = invstd if gamma is None else invstd * gamma
    y = xc * _channel(scale, x.ndim)
    if beta is not None:
        y += _channel(beta, x.ndim)
    return y, mean, invstd


def batch_norm_running_update(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray,
                              invstd: np.ndarray, momentum: float, eps: float, n: int) -> None:
    """PyTorch's running statistics, in place: the variance is the unbiased batch variance."""
    var = (1.0 / (invstd.astype(np.float64) ** 2) - eps) * (n / max(n - 1, 1))
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * var


def batch_norm_backward(gy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, mean: np.ndarray,
                        invstd: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    op = "batch_norm_backward"
    axes = batch_norm_axes(op, x.shape)
    check_norm_params(op, x, (x.shape[1],), gamma, mean, invstd)
    if gy.shape != x.shape:
        raise ShapeError(op, f"gradient shape {gy.shape} differs from input shape {x.shape}", gy, x)
    m = x.size // x.shape[1]
    xhat = (x - _channel(mean, x.ndim)) * _channel(invstd, x.ndim)
    gbeta = gy.sum(axis=axes)
    ggamma = (gy * xhat).sum(axis=axes)
    scale = invstd if gamma is None else invstd * gamma
    gx = (gy - _channel(gbeta / m, x.ndim) - xhat * _channel(ggamma / m, x.ndim)) * _channel(scale, x.ndim)
    if gamma is None:
        return gx, None, None
    return gx, ggamma, gbeta


def layer_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, n_axes: int,
                       eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    op = "layer_norm_forward"
    axes = layer_norm_axes(op, x.shape, n_axes)
    check_norm_params(op, x, tuple(x.shape[x.ndim - n_axes:]), gamma, beta)
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    invstd = (1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)).astype(x.dtype)
    y = xc * invstd
    if gamma is not None:
        y *= gamma
    if beta is not None:
        y += beta
    return y, mean, invstd


def layer_norm_backward(gy: np.ndarray, x: np.ndarray, gamma: np.ndarray | None, mean: np.ndarray,
                        invstd: np.ndarray, n_axes: int
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    op = "layer_norm_backward"
    axes = layer_norm_axes(op, x.shape, n_axes)
    check_norm_params(op, x, tuple(x.shape[x.ndim - n_axes:]), gamma)
    if gy.shape != x.shape:
        raise ShapeError(op, f"gradient shape {gy.shape} differs from input shape {x.shape}", gy, x)
    lead = tuple(range(x.ndim - n_axes))
    m = int(np.prod(x.shape[x.ndim - n_axes:]))
    xhat = (x - mean) * invstd
    g = gy if gamma is None else gy * gamma
    gx = (g - g.mean(axis=axes, keepdims=True)
          - xhat * (g * xhat).sum(axis=axes, keepdims=True) / m) * invstd
    if gamma is None:
        return gx, None, None
    return gx, (gy * xhat).sum(axis=lead), gy.sum(axis=lead)
