"""Layout kernels: reshape (a view when the strides allow, else a copy), transpose and broadcast_to (views),
ascontiguousarray, and concatenate/stack (one strided device copy per input into slices of the output).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import AxisError, DeviceMismatchError, DTypeError, ShapeError

from . import _cudart
from .elementwise import copy_strided
from .storage import CudaArray, c_strides, contiguous, empty


def _prod(values: Any) -> int:
    p = 1
    for v in values:
        p *= v
    return p


def _resolve_shape(a: CudaArray, shape: Any) -> tuple[int, ...]:
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if len(unknown) > 1 or any(n < -1 for n in shape):
        raise ShapeError("reshape", f"invalid target shape {shape}", a)
    known = _prod(n for n in shape if n != -1)
    if unknown:
        if known == 0 or a.size % known:
            raise ShapeError("reshape", f"cannot reshape array of size {a.size} into shape {shape}", a)
        shape = shape[: unknown[0]] + (a.size // known,) + shape[unknown[0] + 1 :]
    if _prod(shape) != a.size:
        raise ShapeError("reshape", f"cannot reshape array of size {a.size} into shape {shape}", a)
    return shape


def _view_strides(a: CudaArray, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Strides that show ``a`` as ``shape`` without copying, or None (NumPy's _attempt_nocopy_reshape)."""
    old = [(n, s) for n, s in zip(a.shape, a.strides, strict=True) if n != 1]
    olddims, oldstrides = [n for n, _ in old], [s for _, s in old]
    new = list(shape)
    strides = [0] * len(new)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new) and oi < len(olddims):
        np_, op = new[ni], olddims[oi]
        while np_ != op:
            if np_ < op:
                np_ *= new[nj]
                nj += 1
            else:
                op *= olddims[oj]
                oj += 1
        # The old dims merged into this group must be C-contiguous among themselves.
        if any(oldstrides[k] != olddims[k + 1] * oldstrides[k + 1] for k in range(oi, oj - 1)):
            return None
        strides[nj - 1] = oldstrides[oj - 1]
        for k in range(nj - 1, ni, -1):
            strides[k - 1] = strides[k] * new[k]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    last = strides[ni - 1] if ni >= 1 else 1
    for k in range(ni, len(new)):
        strides[k] = last
    return tuple(strides)


def reshape(a: CudaArray, shape: Any) -> CudaArray:
    shape = _resolve_shape(a, shape)
    if a.is_contiguous or a.size == 0:
        return a.view(shape, c_strides(shape), a.offset)
    strides = _view_strides(a, shape)
    if strides is not None:
        return a.view(shape, strides, a.offset)
    src = contiguous(a)
    return src.view(shape, c_strides(shape), src.offset)


def transpose(a: CudaArray, axes: Any = None) -> CudaArray:
    nd = len(a.shape)
    axes = (
        tuple(reversed(range(nd))) if axes is None else tuple(int(ax) % nd if nd else int(ax) for ax in axes)
    )
    if sorted(axes) != list(range(nd)):
        raise AxisError("transpose", f"axes {axes} are not a permutation of {nd} dims", a)
    return a.view(tuple(a.shape[ax] for ax in axes), tuple(a.strides[ax] for ax in axes), a.offset)


def broadcast_to(a: CudaArray, shape: Any) -> CudaArray:
    shape = tuple(int(n) for n in shape)
    lead = len(shape) - len(a.shape)
    if lead < 0:
        raise ShapeError("broadcast_to", f"cannot broadcast {a.shape} to fewer dims {shape}", a)
    strides = [0] * lead
    for n, m, s in zip(a.shape, shape[lead:], a.strides, strict=True):
        if n == m:
            strides.append(s if n != 1 else 0)
        elif n == 1:
            strides.append(0)
        else:
            raise ShapeError("broadcast_to", f"cannot broadcast {a.shape} to {shape}", a)
    return a.view(shape, tuple(strides), a.offset)


def ascontiguousarray(a: CudaArray) -> CudaArray:
    _cudart.set_device(a.device)
    return contiguous(a)


def _check_inputs(op: str, arrays: list) -> tuple[np.dtype, int]:
    if not arrays:
        raise ShapeError(op, "need at least one array")
    for x in arrays:
        if type(x) is not CudaArray:
            raise DTypeError(op, f"expected CudaArrays, got {type(x).__name__}", *arrays)
    device = arrays[0].device
    if any(x.device != device for x in arrays):
        raise DeviceMismatchError(op, "arrays on different devices", *arrays)
    _cudart.set_device(device)
    return np.result_type(*[x.dtype for x in arrays]), device


def concatenate(arrays: list, axis: int = 0) -> CudaArray:
    arrays = list(arrays)
    dtype, device = _check_inputs("concatenate", arrays)
    first = arrays[0].shape
    nd = len(first)
    if nd == 0:
        raise ShapeError("concatenate", "zero-dimensional arrays cannot be concatenated", *arrays)
    if not -nd <= axis < nd:
        raise AxisError("concatenate", f"axis {axis} is out of bounds for {nd} dims", *arrays)
    axis %= nd
    for x in arrays:
        if len(x.shape) != nd or any(x.shape[d] != first[d] for d in range(nd) if d != axis):
            raise ShapeError(
                "concatenate", f"shapes {[x.shape for x in arrays]} differ off axis {axis}", *arrays
            )
    shape = first[:axis] + (sum(x.shape[axis] for x in arrays),) + first[axis + 1 :]
    out = empty(shape, dtype, device)
    start = 0
    for x in arrays:
        n = x.shape[axis]
        if n and x.size:
            part = out.view(x.shape, out.strides, out.offset + start * out.strides[axis])
            copy_strided(part, x)
        start += n
    return out


def stack(arrays: list, axis: int = 0) -> CudaArray:
    arrays = list(arrays)
    dtype, device = _check_inputs("stack", arrays)
    first = arrays[0].shape
    if any(x.shape != first for x in arrays):
        raise ShapeError("stack", f"all arrays must have one shape, got {[x.shape for x in arrays]}", *arrays)
    nd = len(first) + 1
    if not -nd <= axis < nd:
        raise AxisError("stack", f"axis {axis} is out of bounds for {nd} dims", *arrays)
    axis %= nd
    shape = first[:axis] + (len(arrays),) + first[axis:]
    out = empty(shape, dtype, device)
    part_strides = out.strides[:axis] + out.strides[axis + 1 :]
    for i, x in enumerate(arrays):
        if x.size:
            copy_strided(out.view(first, part_strides, out.offset + i * out.strides[axis]), x)
    return out
