"""Reductions over axes (int, tuple or None) with keepdims: sum, mean, max, min, argmax."""

from __future__ import annotations

import builtins
from typing import Any

from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import dim_alias, normalize_axis
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


def _check_nonempty(name: str, a: Tensor, axes: tuple | None) -> None:
    if any(a.shape[i] == 0 for i in (range(a.ndim) if axes is None else axes)):
        raise ShapeError(name, f"cannot reduce over an empty axis (the {name} of no elements is undefined); "
                         f"axis={axes}", a)


def _reduce(fn: type, name: str, needs_elements: bool = False):
    def op(a: Tensor, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
           keepdim: bool | None = None) -> Tensor:
        """Reduce over ``axis`` (int, tuple or None for all); ``dim``/``keepdim`` are PyTorch's spellings."""
        if dim is not None:
            axis = dim_alias(name, axis, dim)
        if keepdim is not None:
            keepdims = keepdim
        axes = normalize_axis(axis, a.ndim, name, a)
        if needs_elements:
            _check_nonempty(name, a, axes)
        return fn.apply(a, axis=axes, keepdims=bool(keepdims))
    op.__name__ = op.__qualname__ = name
    return op


sum = _reduce(Sum, "sum")  # noqa: A001
mean = _reduce(Mean, "mean")
max = _reduce(Max, "max", needs_elements=True)  # noqa: A001
min = _reduce(Min, "min", needs_elements=True)  # noqa: A001


def argmax(a: Tensor, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
           keepdim: bool | None = None) -> Tensor:
    axis = dim_alias("argmax", axis, dim)
    if keepdim is not None:
        keepdims = keepdim
    axes = normalize_axis(axis, a.ndim, "argmax", a)
    _check_nonempty("argmax", a, axes)
    return ArgMax.apply(a, axis=None if axes is None else axes[0], keepdims=bool(keepdims))
