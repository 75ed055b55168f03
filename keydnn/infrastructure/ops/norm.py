"""Batch normalisation (statistics over every axis but 1) and layer normalisation (over the trailing axes)
as autograd Functions over the norm kernels. Running statistics are the BatchNorm module's business: the
functional form can hand back the batch mean and inverse std through ``batch_stats``.
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.backends.numpy.norm import batch_norm_axes, check_norm_params, layer_norm_axes
from keydnn.infrastructure.tensor._tensor import Tensor


class BatchNormFn(Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, *, eps, batch_stats):
        y, mean, invstd = ctx.k.batch_norm_forward(x, gamma, beta, eps)
        ctx.saved = (x, gamma, mean, invstd)
        if batch_stats is not None:
            batch_stats[:] = [mean, invstd]
        return y

    @staticmethod
    def backward(ctx, g):
        return ctx.k.batch_norm_backward(g, *ctx.saved)


class LayerNormFn(Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, *, n_axes, eps):
        y, mean, invstd = ctx.k.layer_norm_forward(x, gamma, beta, n_axes, eps)
        ctx.saved = (x, gamma, mean, invstd, n_axes)
        return y

    @staticmethod
    def backward(ctx, g):
        return ctx.k.layer_norm_backward(g, *ctx.saved)


def _check(op: str, x: Any, gamma: Any, beta: Any, eps: float) -> None:
    if not isinstance(x, Tensor) or x.dtype.kind != "f":
        raise DTypeError(op, f"needs a float Tensor input, got {getattr(x, 'dtype', type(x).__name__)}")
    if (gamma is None) != (beta is None):
        raise ShapeError(op, "give both gamma and beta (affine) or neither")
    if not eps > 0:
        raise ShapeError(op, f"eps must be positive, got {eps!r}")


def batch_norm(x: Tensor, gamma: Tensor | None = None, beta: Tensor | None = None, eps: float = 1e-5,
               batch_stats: list | None = None) -> Tensor:
    """Normalise x (N, C, ...) per channel with the batch's mean and biased variance, then scale and shift.

    If ``batch_stats`` is a list it receives [mean (C,), invstd (C,)] as backend storage.
    """
    op = "batch_norm"
    _check(op, x, gamma, beta, eps)
    batch_norm_axes(op, x.shape)
    if x.numel() <= x.shape[1]:  # one value per channel: the variance is 0 and the output all zeros
        raise ShapeError(op, f"expected more than 1 value per channel when training, got input of shape "
                         f"{x.shape} (use a batch of 2 or more, or eval mode for running statistics)", x)
    check_norm_params(op, x, (x.shape[1],), gamma, beta)
    return BatchNormFn.apply(x, gamma, beta, eps=float(eps), batch_stats=batch_stats)


def layer_norm(x: Tensor, normalized_shape: Any, gamma: Tensor | None = None, beta: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing axes ``normalized_shape`` (which must match x's last dims)."""
    op = "layer_norm"
    _check(op, x, gamma, beta, eps)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    n_axes = len(shape)
    if n_axes == 0 or n_axes > x.ndim or tuple(x.shape[x.ndim - n_axes:]) != shape:
        raise ShapeError(op, f"normalized_shape {shape} does not match the trailing dims of {x.shape}", x)
    layer_norm_axes(op, x.shape, n_axes)
    check_norm_params(op, x, shape, gamma, beta)
    return LayerNormFn.apply(x, gamma, beta, n_axes=n_axes, eps=float(eps))
