"""Reductions over axes (int, tuple or None) with keepdims: sum, mean, max, min, argmax."""

from __future__ import annotations

import builtins
from typing import Any

from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import normalize_axis
from keydnn.infrastructure.tensor._tensor import Tensor


def _kept_shape(shape: tuple, axes: tuple | None) -> tuple:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _count(shape: tuple, axes: tuple | None) -> int:
    n = 1
    for i, s in enumerate(shape):
        if axes is None or i in axes:
            n *= s
    return n


class Sum(Function):
    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        ctx.saved = (a.shape, axis)
        return ctx.k.sum(a, axis, keepdims)

    @staticmethod
    def backward(ctx, g):
        shape, axis = ctx.saved
        k = ctx.k
        return (k.broadcast_to(k.reshape(g, _kept_shape(shape, axis)), shape),)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        ctx.saved = (a.shape, axis)
        n = _count(a.shape, axis)
        return ctx.k.divide(ctx.k.sum(a, axis, keepdims), builtins.max(n, 1))

    @staticmethod
    def backward(ctx, g):
        shape, axis = ctx.saved
        k = ctx.k
        g = k.divide(k.reshape(g, _kept_shape(shape, axis)), builtins.max(_count(shape, axis), 1))
        return (k.broadcast_to(g, shape),)


class _Extreme(Function):
    """max/min: the gradient is shared equally by every element that attains the extreme."""

    kernel = "max"

    @classmethod
    def forward(cls, ctx, a, *, axis, keepdims):
        k = ctx.k
        y = getattr(k, cls.kernel)(a, axis, True)
        ctx.saved = (a, y, axis)
        return y if keepdims else k.reshape(y, tuple(s for i, s in enumerate(a.shape)
                                                     if axis is not None and i not in axis))

    @staticmethod
    def backward(ctx, g):
        a, y, axis = ctx.saved
        k = ctx.k
        hits = k.astype(k.equal(a, y), a.dtype)
        share = k.divide(k.reshape(g, y.shape), k.sum(hits, axis, True))
        return (k.multiply(hits, share),)


class Max(_Extreme):
    kernel = "max"


class Min(_Extreme):
    kernel = "min"


class ArgMax(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, a, *, axis, keepdims):
        return ctx.k.argmax(a, axis, keepdims)


def _reduce(fn: type, name: str):
    def op(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
        return fn.apply(a, axis=normalize_axis(axis, a.ndim, name, a), keepdims=bool(keepdims))
    op.__name__ = name
    return op


sum = _reduce(Sum, "sum")  # noqa: A001
mean = _reduce(Mean, "mean")
max = _reduce(Max, "max")  # noqa: A001
min = _reduce(Min, "min")  # noqa: A001


def argmax(a: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axis(axis, a.ndim, "argmax", a)
    return ArgMax.apply(a, axis=None if axes is None else axes[0], keepdims=bool(keepdims))
