"""Layout ops: reshape, transpose/permute, squeeze/unsqueeze, flatten, broadcast_to, concat and stack."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keydnn.domain.errors import AxisError, DeviceMismatchError, DTypeError, ShapeError
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.ops._util import broadcast_shape, dim_alias, normalize_axis, unbroadcast
from keydnn.infrastructure.tensor._tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, *, shape):
        ctx.saved = (a.shape,)
        return ctx.k.reshape(a, shape)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.reshape(g, ctx.saved[0]),)


class Transpose(Function):
    @staticmethod
    def forward(ctx, a, *, axes):
        ctx.saved = (axes,)
        return ctx.k.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        return (ctx.k.transpose(g, tuple(np.argsort(ctx.saved[0]))),)


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, a, *, shape):
        ctx.saved = (a.shape,)
        return ctx.k.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return (unbroadcast(ctx.k, g, ctx.saved[0]),)


class Concat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.saved = (axis, [a.shape[axis] for a in arrays])
        return ctx.k.concatenate(list(arrays), axis)

    @staticmethod
    def backward(ctx, g):
        axis, sizes = ctx.saved
        out, start = [], 0
        for n in sizes:
            index = (slice(None),) * axis + (slice(start, start + n),)
            out.append(ctx.k.getitem(g, index))
            start += n
        return tuple(out)


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.saved = (axis, len(arrays))
        return ctx.k.stack(list(arrays), axis)

    @staticmethod
    def backward(ctx, g):
        axis, n = ctx.saved
        return tuple(ctx.k.getitem(g, (slice(None),) * axis + (i,)) for i in range(n))


def _resolve_shape(shape: Any, size: int, a: Tensor) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ShapeError("reshape", f"at most one -1 allowed in {shape}", a)
    known = math.prod(s for s in shape if s != -1)  # Python ints: no overflow, and 20x cheaper than np.prod
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError("reshape", f"cannot reshape {size} elements into {shape}", a)
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise ShapeError("reshape", f"cannot reshape {size} elements into {shape}", a)
    return shape


def reshape(a: Tensor, *shape: Any) -> Tensor:
    target = _resolve_shape(shape, a.numel(), a)
    return a if target == a.shape else Reshape.apply(a, shape=target)


def permute(a: Tensor, *axes: Any) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    norm = tuple(int(ax) % max(a.ndim, 1) for ax in axes)
    if sorted(norm) != list(range(a.ndim)):
        raise ShapeError("permute", f"axes {axes} are not a permutation of {a.ndim} dimensions", a)
    return Transpose.apply(a, axes=norm)


def transpose(a: Tensor, axis0: int | None = None, axis1: int | None = None, *, dim0: int | None = None,
              dim1: int | None = None) -> Tensor:
    """Reverse all axes (like ``.T``), or swap two (``dim0``/``dim1`` are PyTorch's spellings)."""
    axis0, axis1 = dim_alias("transpose", axis0, dim0, name="axis0"), dim_alias("transpose", axis1, dim1,
                                                                                 name="axis1")
    if (axis0 is None) != (axis1 is None):
        raise AxisError("transpose", f"give both axes to swap or neither, got {axis0!r} and {axis1!r}", a)
    if axis0 is None:
        return Transpose.apply(a, axes=tuple(reversed(range(a.ndim))))
    i, j = (normalize_axis(ax, a.ndim, "transpose", a)[0] for ax in (axis0, axis1))
    axes = list(range(a.ndim))
    axes[i], axes[j] = axes[j], axes[i]
    return Transpose.apply(a, axes=tuple(axes))


def squeeze(a: Tensor, axis: Any = None, *, dim: Any = None) -> Tensor:
    axis = dim_alias("squeeze", axis, dim)
    axes = normalize_axis(axis, a.ndim, "squeeze", a)
    if axes is None:
        axes = tuple(i for i, s in enumerate(a.shape) if s == 1)
    if any(a.shape[i] != 1 for i in axes):
        raise ShapeError("squeeze", f"axis {axis} does not have size 1", a)
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in axes))


def unsqueeze(a: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    axis = dim_alias("unsqueeze", axis, dim)
    if axis is None:
        raise AxisError("unsqueeze", "needs an axis (axis= or dim=)", a)
    ax = normalize_axis(axis, a.ndim + 1, "unsqueeze", a)[0]
    return reshape(a, a.shape[:ax] + (1,) + a.shape[ax:])


def flatten(a: Tensor, start_axis: int = 0, end_axis: int = -1, *, start_dim: int | None = None,
            end_dim: int | None = None) -> Tensor:
    start_axis = dim_alias("flatten", start_axis, start_dim, 0, "start_axis")
    end_axis = dim_alias("flatten", end_axis, end_dim, -1, "end_axis")
    if a.ndim == 0:
        return reshape(a, (1,))
    s = normalize_axis(start_axis, a.ndim, "flatten", a)[0]
    e = normalize_axis(end_axis, a.ndim, "flatten", a)[0]
    return reshape(a, a.shape[:s] + (-1,) + a.shape[e + 1:]) if s <= e else a


def broadcast_to(a: Tensor, shape: Any) -> Tensor:
    shape = tuple(int(s) for s in shape)
    if broadcast_shape(a.shape, shape, "broadcast_to", a) != shape:
        raise ShapeError("broadcast_to", f"cannot broadcast {a.shape} to {shape}", a)
    return a if shape == a.shape else BroadcastTo.apply(a, shape=shape)


def _check_sequence(tensors: Any, op: str) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ShapeError(op, "needs at least one tensor")
    first = tensors[0]
    for t in tensors:
        if not isinstance(t, Tensor):
            raise DTypeError(op, f"expects Tensors, got {type(t).__name__}")
        if t.device is not first.device:
            raise DeviceMismatchError(op, "tensors are on different devices", *tensors)
        if t.dtype != first.dtype:
            raise DTypeError(op, "tensors have different dtypes", *tensors)
    return tensors


def concat(tensors: Any, axis: int = 0, *, dim: int | None = None) -> Tensor:
    axis = dim_alias("concat", axis, dim, 0)
    tensors = _check_sequence(tensors, "concat")
    first = tensors[0]
    if first.ndim == 0:
        raise ShapeError("concat", "cannot concatenate 0-d tensors", *tensors)
    ax = normalize_axis(axis, first.ndim, "concat", first)[0]
    for t in tensors:
        if t.ndim != first.ndim or any(s != f for i, (s, f) in enumerate(zip(t.shape, first.shape)) if i != ax):
            raise ShapeError("concat", f"shapes differ outside axis {ax}", *tensors)
    return Concat.apply(*tensors, axis=ax)


def stack(tensors: Any, axis: int = 0, *, dim: int | None = None) -> Tensor:
    axis = dim_alias("stack", axis, dim, 0)
    tensors = _check_sequence(tensors, "stack")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ShapeError("stack", "all tensors must have the same shape", *tensors)
    ax = normalize_axis(axis, tensors[0].ndim + 1, "stack", tensors[0])[0]
    return Stack.apply(*tensors, axis=ax)


def sum_to_shape(a: Tensor, shape: Any) -> Tensor:
    """Sum ``a`` down to ``shape`` (the inverse of broadcast_to)."""
    from keydnn.infrastructure.ops.reduce import sum as reduce_sum

    shape = tuple(int(s) for s in shape)
    if len(shape) > a.ndim or broadcast_shape(shape, a.shape, "sum_to_shape", a) != a.shape:
        raise ShapeError("sum_to_shape", f"{a.shape} is not a broadcast of {shape}", a)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1)
    return reshape(reduce_sum(a, axes, keepdims=True) if axes else a, shape)
