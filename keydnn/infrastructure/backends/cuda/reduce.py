"""Reduction kernels (sum, max, min, argmax) over None, an axis or a tuple of axes, with keepdims.

The reduced axes become the middle of a contiguous (outer, k, inner) array: free when they already form
one block of a contiguous input, otherwise by moving them last in one copy. The library then reduces rows
or columns, splitting long reductions into fixed chunks so results are deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import AxisError, DTypeError, ShapeError

from . import _cudart, _lib, allocator
from .elementwise import BOOL, I64, astype, check
from .layout import transpose
from .storage import DTYPE_CODES, CudaArray, contiguous, empty


def normalize_axes(op: str, a: CudaArray, axis: Any) -> tuple[int, ...]:
    nd = len(a.shape)
    if axis is None:
        return tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        ax = int(ax)
        if not -nd <= ax < nd:
            raise AxisError(op, f"axis {ax} is out of bounds for an array of dimension {nd}", a)
        out.append(ax % nd)
    if len(set(out)) != len(out):
        raise AxisError(op, f"repeated axis in {axis}", a)
    return tuple(sorted(out))


def _prod(values: Any) -> int:
    p = 1
    for v in values:
        p *= v
    return p


def _layout(a: CudaArray, axes: tuple[int, ...]) -> tuple[CudaArray, int, int, int]:
    """(contiguous array, outer, k, inner) with the reduced axes as the middle block."""
    shape = a.shape
    lo, hi = axes[0], axes[-1]
    # Size-1 axes between reduced ones change neither values nor order, so they may join the block.
    if all(d in axes or shape[d] == 1 for d in range(lo, hi + 1)):
        return contiguous(a), _prod(shape[:lo]), _prod(shape[lo:hi + 1]), _prod(shape[hi + 1:])
    kept = [d for d in range(len(shape)) if d not in axes]
    moved = contiguous(transpose(a, tuple(kept) + axes))
    return moved, _prod(shape[d] for d in kept), _prod(shape[d] for d in axes), 1


def _reduce(op: str, code: int, a: CudaArray, axis: Any, keepdims: bool) -> CudaArray:
    if type(a) is not CudaArray:
        raise DTypeError(op, "expected a CudaArray", a)
    _cudart.set_device(a.device)
    axes = normalize_axes(op, a, axis)
    if code == _lib.ARGMAX and axis is not None and len(axes) != 1:
        raise AxisError(op, f"argmax takes one axis, got {axis}", a)
    if code == _lib.SUM and a.dtype == BOOL:
        a = astype(a, I64)
    out_dtype = I64 if code == _lib.ARGMAX else a.dtype
    if keepdims:
        out_shape = tuple(1 if d in axes else n for d, n in enumerate(a.shape))
    else:
        out_shape = tuple(n for d, n in enumerate(a.shape) if d not in axes)
    k = _prod(a.shape[d] for d in axes)
    if k == 0 and code != _lib.SUM:
        raise ShapeError(op, "zero-size reduction has no identity", a)
    out = empty(out_shape, out_dtype, a.device)
    if out.size == 0:
        return out
    if not axes:  # reducing no axes: NumPy returns the values themselves (argmax over an empty tuple is 0)
        if code == _lib.ARGMAX:
            check(_lib.lib.kd_fill(DTYPE_CODES[I64], out.ptr, _lib.scalar(0), out.size, None), op)
            return out
        return astype(a, out_dtype)
    src, outer, k, inner = _layout(a, axes)
    code_dtype = DTYPE_CODES[src.dtype]
    ws_bytes = _lib.lib.kd_reduce_workspace(code, code_dtype, outer, k, inner)
    ws = allocator.allocate(ws_bytes, a.device) if ws_bytes else None
    check(_lib.lib.kd_reduce(code, code_dtype, out.ptr, src.ptr, outer, k, inner, ws.ptr if ws else None,
                             ws_bytes), op)
    return out


def sum(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("sum", _lib.SUM, a, axis, keepdims)


def max(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("max", _lib.MAX, a, axis, keepdims)


def min(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("min", _lib.MIN, a, axis, keepdims)


def argmax(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _reduce("argmax", _lib.ARGMAX, a, axis, keepdims)
