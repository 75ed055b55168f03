"""Reduction kernels (sum, max, min, argmax) over None, an axis or a tuple of axes, with keepdims.

The reduced axes become the middle of a contiguous (outer, k, inner) array: free when they already form
one block of a contiguous input, otherwise by moving them last in one copy. The library then reduces rows
or columns, splitting long reductions into fixed chunks so results are deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import AxisError, DTypeError, ShapeError

from . import _cudart, _lib
from .elementwise import BOOL, I64, astype, fill
from .layout import transpose
from .storage import DTYPE_CODES, CudaArray, contiguous, new, workspace


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


_PLANS: dict[tuple, tuple] = {}


def _plan(op: str, code: int, a: CudaArray, axis: Any, keepdims: bool) -> tuple:
    """(axes, out_shape, moved-axes permutation or None, outer, k, inner, workspace bytes), memoised on
    the input layout: a training loop reduces the same few layouts every step."""
    key = (
        code,
        a.shape,
        a.strides,
        a.dtype,
        a.device,
        tuple(axis) if isinstance(axis, list) else axis,
        keepdims,
    )
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    axes = normalize_axes(op, a, axis)
    if code == _lib.ARGMAX and axis is not None and len(axes) != 1:
        raise AxisError(op, f"argmax takes one axis, got {axis}", a)
    shape = a.shape
    if keepdims:
        out_shape = tuple(1 if d in axes else n for d, n in enumerate(shape))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in axes)
    k = _prod(shape[d] for d in axes)
    if k == 0 and code != _lib.SUM:
        raise ShapeError(op, "zero-size reduction has no identity", a)
    perm, outer, inner = None, 1, 1
    if axes:
        lo, hi = axes[0], axes[-1]
        # Size-1 axes between reduced ones change neither values nor order, so they may join the block.
        if all(d in axes or shape[d] == 1 for d in range(lo, hi + 1)):
            outer, k, inner = _prod(shape[:lo]), _prod(shape[lo : hi + 1]), _prod(shape[hi + 1 :])
        else:
            kept = tuple(d for d in range(len(shape)) if d not in axes)
            perm, outer = kept + axes, _prod(shape[d] for d in kept)
    ws = _lib.lib.kd_reduce_workspace(code, DTYPE_CODES[a.dtype], outer, k, inner) if axes and k else 0
    plan = (axes, out_shape, perm, outer, k, inner, ws)
    if len(_PLANS) < 4096:
        _PLANS[key] = plan
    return plan


def _reduce(op: str, code: int, a: CudaArray, axis: Any, keepdims: bool) -> CudaArray:
    if type(a) is not CudaArray:
        raise DTypeError(op, "expected a CudaArray", a)
    if a.device != _cudart.current_device:
        _cudart.set_device(a.device)
    if code == _lib.SUM and a.dtype == BOOL:
        a = astype(a, I64)
    axes, out_shape, perm, outer, k, inner, ws_bytes = _plan(op, code, a, axis, keepdims)
    out = new(out_shape, I64 if code == _lib.ARGMAX else a.dtype, a.device)
    if out.size == 0:
        return out
    if not axes:  # reducing no axes: NumPy returns the values themselves (argmax over an empty tuple is 0)
        if code == _lib.ARGMAX:
            fill(out, 0, op)
            return out
        return astype(a, a.dtype)
    src = contiguous(a) if perm is None else contiguous(transpose(a, perm))
    ws = workspace(ws_bytes, a.device) if ws_bytes else None
    status = _lib.lib.kd_reduce(
        code, DTYPE_CODES[src.dtype], out.ptr, src.ptr, outer, k, inner, ws.ptr if ws else None, ws_bytes
    )
    if status:
        _lib.check(status, op)
    return out


def sum(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("sum", _lib.SUM, a, axis, keepdims)


def max(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("max", _lib.MAX, a, axis, keepdims)


def min(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:  # noqa: A001
    return _reduce("min", _lib.MIN, a, axis, keepdims)


def argmax(a: CudaArray, axis: Any = None, keepdims: bool = False) -> CudaArray:
    return _reduce("argmax", _lib.ARGMAX, a, axis, keepdims)
