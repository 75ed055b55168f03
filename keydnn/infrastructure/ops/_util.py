"""Helpers shared by the op families: operand checks, axis normalisation, reducing broadcast gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import AxisError, DTypeError, ShapeError
from keydnn.infrastructure.tensor._tensor import Tensor

SCALAR_TYPES = (int, float, bool, np.integer, np.floating, np.bool_)


def broadcast_shape(a: tuple, b: tuple, op: str, *operands: Any) -> tuple:
    if a == b:
        return a
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x != y and x != 1 and y != 1:
            raise ShapeError(op, f"shapes {tuple(a)} and {tuple(b)} do not broadcast", *operands)
        out.append(y if x == 1 else x)
    return tuple(out)


def shape_of(x: Any) -> tuple:
    return getattr(x, "shape", ())


def unbroadcast(k: Any, g: Any, shape: tuple) -> Any:
    """Sum ``g`` down to ``shape`` (the gradient of broadcasting an operand of that shape)."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = k.sum(g, axes, True)
    return k.reshape(g, shape)


def binary_operands(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """Validate the operands of a binary elementwise op: Tensors or Python scalars, one dtype, broadcastable.

    A bool tensor (a comparison mask) is cast to the other operand's float dtype.
    """
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        da, db = a._data.dtype, b._data.dtype
        if da != db:
            if da.kind == "b" and db.kind != "b":
                a = a.astype(db)
            elif db.kind == "b" and da.kind != "b":
                b = b.astype(da)
            else:
                raise DTypeError(op, f"dtypes differ ({da} vs {db}); convert one with .astype()", a, b)
        sa, sb = a._data.shape, b._data.shape
        if sa != sb:
            broadcast_shape(sa, sb, op, a, b)
        return a, b
    if ta and isinstance(b, SCALAR_TYPES):  # NumPy scalars would promote float32 to float64 (NEP 50)
        return a, (b.item() if isinstance(b, np.generic) else b)
    if tb and isinstance(a, SCALAR_TYPES):
        return (a.item() if isinstance(a, np.generic) else a), b
    if ta and isinstance(b, np.ndarray) or tb and isinstance(a, np.ndarray):
        t = a if ta else b
        arr = Tensor(data=(b if ta else a), dtype=t.dtype, device=t.device)
        return (a, arr) if ta else (arr, b)
    raise DTypeError(op, f"unsupported operand types {type(a).__name__} and {type(b).__name__}")


def dim_alias(op: str, axis: Any, dim: Any, axis_default: Any = None, name: str = "axis") -> Any:
    """``dim=`` is PyTorch's spelling of ``axis=``: take it, and refuse the two together."""
    if dim is None:
        return axis
    if axis is not axis_default and axis != axis_default:
        raise AxisError(op, f"give {name} or its alias dim, not both (got {name}={axis!r}, dim={dim!r})")
    return dim


def normalize_axis(axis: Any, ndim: int, op: str, t: Any = None) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise AxisError(op, f"axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise AxisError(op, f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < max(ndim, 1):
            raise AxisError(op, f"axis {ax} is out of range for a {ndim}-d tensor", *([t] if t is not None else []))
        out.append(int(ax) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise AxisError(op, f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def require_float(op: str, *tensors: Any) -> None:
    for t in tensors:
        if isinstance(t, Tensor) and t._data.dtype.kind != "f":
            raise DTypeError(op, f"needs float input, got {t.dtype}", t)
