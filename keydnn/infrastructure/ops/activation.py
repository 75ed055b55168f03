"""Softmax, log-softmax and dropout (the activations that are not plain elementwise ops)."""

from __future__ import annotations

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import dim_alias, normalize_axis, require_float
from keydnn.infrastructure.tensor._tensor import Tensor, next_seed


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, *, axis):
        y = ctx.k.softmax(a, axis)
        ctx.saved = (y, axis)
        return y

    @staticmethod
    def backward(ctx, g):
        y, axis = ctx.saved
        return (ctx.k.softmax_backward(y, g, axis),)  # y * (g - sum(g * y)); one fused kernel on CUDA


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, *, axis):
        y = ctx.k.log_softmax(a, axis)
        ctx.saved = (y, axis)
        return y

    @staticmethod
    def backward(ctx, g):
        y, axis = ctx.saved
        return (ctx.k.log_softmax_backward(y, g, axis),)  # g - exp(y) * sum(g)


def softmax(a: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    axis = dim_alias("softmax", axis, dim, -1)
    require_float("softmax", a)
    return Softmax.apply(a, axis=normalize_axis(axis, a.ndim, "softmax", a)[0])


def log_softmax(a: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    axis = dim_alias("log_softmax", axis, dim, -1)
    require_float("log_softmax", a)
    return LogSoftmax.apply(a, axis=normalize_axis(axis, a.ndim, "log_softmax", a)[0])


class Dropout(Function):
    @staticmethod
    def forward(ctx, a, *, p, seed):
        mask = ctx.k.dropout_mask(a.shape, p, a.dtype, seed)
        ctx.saved = (mask,)
        return ctx.k.multiply(a, mask)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.multiply(g, ctx.saved[0]),)


def dropout(a: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p)."""
    if not 0.0 <= p < 1.0:
        raise ArgumentError("dropout", f"p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return a
    require_float("dropout", a)
    return Dropout.apply(a, p=float(p), seed=next_seed())
