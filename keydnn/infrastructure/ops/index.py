"""Indexing: ``t[index]`` (basic slicing, integer, fancy and boolean) whose backward scatter-adds, and
``t[index] = v``."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, IndexingError, wrap_kernel_error
from keydnn.infrastructure import autograd
from keydnn.infrastructure.autograd import Function
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.ops._util import SCALAR_TYPES, unbroadcast
from keydnn.infrastructure.tensor._tensor import Tensor, _check_leaf_inplace


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, *, index):
        ctx.saved = (a.shape, a.dtype, index)
        try:
            return ctx.k.getitem(a, index)
        except IndexError as exc:
            raise IndexingError("getitem", f"{exc} (index {_show(index)})", a) from None

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.saved
        return (ctx.k.index_add(shape, dtype, index, g),)


class SetItem(Function):
    """Out-of-place ``a[index] = v`` for the graph: the result takes v's gradient at index, a's elsewhere."""

    @staticmethod
    def forward(ctx, a, v, *, index):
        k = ctx.k
        out = k.astype(a, a.dtype)  # a private copy: the input stays intact for other graph users
        try:
            k.setitem(out, index, v)
        except IndexError as exc:
            raise IndexingError("setitem", f"{exc} (index {_show(index)})", a) from None
        ctx.saved = (index, getattr(v, "shape", ()))
        return out

    @staticmethod
    def backward(ctx, g):
        index, v_shape = ctx.saved
        k, n = ctx.k, ctx.needs_grad
        ga = gv = None
        if n[0]:
            ga = k.astype(g, g.dtype)
            k.setitem(ga, index, 0)
        if n[1]:
            gv = unbroadcast(k, k.getitem(g, index), v_shape)
        return ga, gv


def _show(index: tuple) -> str:
    return "(" + ", ".join(f"array{tuple(i.shape)}" if hasattr(i, "shape") else repr(i) for i in index) + ")"


def normalize_index(a: Tensor, index: Any, op: str = "getitem") -> tuple:
    """Turn a user index into a tuple of int, slice, None, Ellipsis and int64/bool arrays (host or a's
    device)."""
    if not isinstance(index, tuple):
        index = (index,)
    out: list[Any] = []
    for i in index:
        if isinstance(i, Tensor):
            if i.dtype.kind not in "biu":
                raise IndexingError(op, f"index tensors must be int64 or bool, got {i.dtype}", a, i)
            if i.device is a.device:
                out.append(i._data)
            elif i.device.is_cpu():
                out.append(i.to_numpy())
            else:
                raise DeviceMismatchError(op, "index tensor is on another device", a, i)
        elif isinstance(i, (list, np.ndarray)):
            arr = np.asarray(i)
            if arr.dtype.kind == "b":
                out.append(arr)
            elif arr.dtype.kind in "iu" or arr.size == 0:
                out.append(arr.astype(np.int64))
            else:
                raise IndexingError(op, f"index arrays must hold integers or booleans, got {arr.dtype}", a)
        elif isinstance(i, (bool, np.bool_)):
            raise IndexingError(op, "a bare boolean index is not supported; use a mask tensor", a)
        elif isinstance(i, (int, np.integer)):
            out.append(int(i))
        elif i is None or i is Ellipsis or isinstance(i, slice):
            out.append(i)
        else:
            raise IndexingError(op, f"unsupported index of type {type(i).__name__}", a)
    return tuple(out)


def getitem(a: Tensor, index: Any) -> Tensor:
    return GetItem.apply(a, index=normalize_index(a, index))


def setitem(a: Tensor, index: Any, value: Any) -> None:
    """``a[index] = value``: in place when no graph is recorded, else recorded out of place."""

    idx = normalize_index(a, index, "setitem")
    if isinstance(value, Tensor):
        if value.device is not a.device:
            raise DeviceMismatchError("setitem", "value is on another device", a, value)
        v: Any = value if value.dtype == a.dtype else value.astype(a.dtype)
    elif isinstance(value, SCALAR_TYPES):
        v = value
    else:
        v = Tensor(data=np.asarray(value), dtype=a.dtype, device=a.device)
    tracked = autograd.is_grad_enabled() and (a.requires_grad or getattr(v, "requires_grad", False))
    if not tracked:
        try:
            kernels_for(a.device).setitem(a._data, idx, v._data if isinstance(v, Tensor) else v)
        except IndexError as exc:
            raise IndexingError("setitem", str(exc), a) from None
        except (ValueError, TypeError, MemoryError) as exc:  # e.g. a value that does not broadcast
            raise wrap_kernel_error("setitem", exc, a, *([v] if isinstance(v, Tensor) else [])) from None
        a._version += 1
        return
    _check_leaf_inplace(a, "setitem")
    old = Tensor._make(a._data, a._device, a.requires_grad, a._node)
    res = SetItem.apply(old, v, index=idx)
    a._data, a._node, a.requires_grad = res._data, res._node, res.requires_grad
    a._version += 1
