"""Fused multi-tensor optimizer kernels: one launch per 48 parameters updates params (and momentum / Adam
moments) in place. Semantics are the NumPy reference's (``backends/numpy/nn.py``).
"""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import DeviceMismatchError, DTypeError, ShapeError

from . import _cudart, _lib
from .elementwise import astype
from .storage import DTYPE_CODES, CudaArray, contiguous


def _pointer_table(op: str, groups: list[list], dtype: Any, device: int) -> tuple[list, Any]:
    """One ctypes pointer array per group (params, grads, ...) and the sizes array, after checks."""
    n = len(groups[0])
    if any(len(g) != n for g in groups):
        raise ShapeError(op, f"tensor lists differ in length: {[len(g) for g in groups]}")
    ptrs: list[list[int]] = [[0] * n for _ in groups]
    for i in range(n):
        p = groups[0][i]
        for k, group in enumerate(groups):
            x = group[i]
            if type(x) is not CudaArray:
                raise DTypeError(op, f"expected CudaArrays, got {type(x).__name__}", x)
            if x.shape != p.shape:
                raise ShapeError(op, f"shapes differ for parameter {i}: {p.shape} vs {x.shape}", p, x)
            if x.device != device:
                raise DeviceMismatchError(
                    op, f"parameter {i} has tensors on cuda:{device} and cuda:{x.device}", p, x
                )
            if x.dtype != dtype or not x.is_contiguous:
                if k != 1:
                    raise DTypeError(
                        op, f"parameter {i}: in-place state must be contiguous {dtype}, got {x.dtype}", p, x
                    )
                # A gradient of another dtype or layout is converted, and kept alive until the launch.
                x = group[i] = contiguous(x) if x.dtype == dtype else astype(x, dtype)
            ptrs[k][i] = x.ptr
    return [_lib.pointer_array(column) for column in ptrs], _lib.int64_array([p.size for p in groups[0]])


def _dtype_and_device(op: str, params: list) -> tuple[Any, int]:
    first = params[0]
    if type(first) is not CudaArray or first.dtype.kind != "f":
        raise DTypeError(op, "parameters must be floating CudaArrays", first)
    _cudart.set_device(first.device)
    return first.dtype, first.device


def sgd_step(
    params: list,
    grads: list,
    bufs: list,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    op = "sgd_step"
    if not params:
        return
    dtype, device = _dtype_and_device(op, params)
    # With momentum 0 the kernel never touches bufs; the optimizer may pass none.
    groups = [list(params), list(grads), list(bufs) if momentum else list(params)]
    (p, g, b), sizes = _pointer_table(op, groups, dtype, device)
    status = _lib.lib.kd_sgd_step(
        DTYPE_CODES[dtype],
        len(params),
        p,
        g,
        b,
        sizes,
        float(lr),
        float(momentum),
        float(dampening),
        int(bool(nesterov)),
        float(weight_decay),
    )
    if status:
        _lib.check(status, op)


def adam_step(
    params: list,
    grads: list,
    m: list,
    v: list,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    op = "adam_step"
    if not params:
        return
    dtype, device = _dtype_and_device(op, params)
    groups = [list(params), list(grads), list(m), list(v)]
    (p, g, mm, vv), sizes = _pointer_table(op, groups, dtype, device)
    status = _lib.lib.kd_adam_step(
        DTYPE_CODES[dtype],
        len(params),
        p,
        g,
        mm,
        vv,
        sizes,
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        int(step),
        int(bool(decoupled)),
    )
    if status:
        _lib.check(status, op)
