"""Creation and transfer kernels: empty/zeros/full/arange, Philox random arrays, host <-> device copies.

Creation kernels take the device index first; the kernel table binds it, so ``table(1).zeros(...)``
allocates on cuda:1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keydnn.domain.errors import DTypeError, ShapeError

from . import _cudart, _lib, faults
from .elementwise import check, fill, python_scalar
from .storage import DTYPE_CODES, CudaArray, as_dtype, contiguous
from .storage import empty as _empty

_UINT64 = (1 << 64) - 1


def _shape(op: str, shape: Any) -> tuple[int, ...]:
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ShapeError(op, f"negative dimension in shape {shape}")
    return shape


def empty(device: int, shape: Any, dtype: Any) -> CudaArray:
    _cudart.set_device(device)
    return _empty(_shape("empty", shape), as_dtype(dtype, "empty"), device)


def full(device: int, shape: Any, value: Any, dtype: Any) -> CudaArray:
    out = empty(device, shape, dtype)
    fill(out, python_scalar("full", value), "full")
    return out


def zeros(device: int, shape: Any, dtype: Any) -> CudaArray:
    return full(device, shape, 0, dtype)


def arange(device: int, start: float, stop: float, step: float, dtype: Any) -> CudaArray:
    dt = as_dtype(dtype, "arange")
    if step == 0:
        raise ShapeError("arange", "step must not be zero")
    n = max(0, math.ceil((stop - start) / step))
    out = empty(device, (n,), dt)
    check(_lib.lib.kd_arange(DTYPE_CODES[dt], out.ptr, _lib.scalar(start), _lib.scalar(step), n), "arange")
    return out


def _seed(seed: int | None) -> int:
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    return int(seed) & _UINT64


def _float_dtype(op: str, dtype: Any) -> np.dtype:
    _cudart.refuse_in_capture(op, "a random draw is seeded on the host, so every replay would repeat the "
                                  "captured numbers (dropout, random initialisation): draw them outside the capture")
    dt = as_dtype(dtype, op)
    if dt.kind != "f":
        raise DTypeError(op, f"random arrays are floating point, got dtype {dt}")
    return dt


def uniform(device: int, shape: Any, low: float, high: float, dtype: Any, seed: int | None) -> CudaArray:
    out = empty(device, shape, _float_dtype("uniform", dtype))
    check(
        _lib.lib.kd_uniform(DTYPE_CODES[out.dtype], out.ptr, out.size, float(low), float(high), _seed(seed)),
        "uniform",
    )
    return out


def normal(device: int, shape: Any, mean: float, std: float, dtype: Any, seed: int | None) -> CudaArray:
    out = empty(device, shape, _float_dtype("normal", dtype))
    check(
        _lib.lib.kd_normal(DTYPE_CODES[out.dtype], out.ptr, out.size, float(mean), float(std), _seed(seed)),
        "normal",
    )
    return out


def dropout_mask(device: int, shape: Any, p: float, dtype: Any, seed: int | None) -> CudaArray:
    if not 0.0 <= p <= 1.0:
        raise ShapeError("dropout_mask", f"p must be in [0, 1], got {p}")
    out = empty(device, shape, _float_dtype("dropout_mask", dtype))
    check(
        _lib.lib.kd_dropout_mask(DTYPE_CODES[out.dtype], out.ptr, out.size, float(p), _seed(seed)),
        "dropout_mask",
    )
    return out


def from_host_on(a: Any, device: int) -> CudaArray:
    """A device copy of host data (a non-contiguous ndarray is made contiguous on the host first)."""
    host = np.asarray(a)
    if not host.flags.c_contiguous:  # (np.ascontiguousarray would also turn 0-d into 1-d)
        host = host.copy(order="C")
    dt = as_dtype(host.dtype, "from_host")
    out = empty(device, host.shape, dt)
    _cudart.memcpy(out.ptr, host.ctypes.data, host.nbytes, _cudart.MEMCPY_H2D)
    return out


def from_host(device: int, a: Any) -> CudaArray:
    return from_host_on(a, device)


def to_host(a: Any) -> np.ndarray:
    """A host copy (synchronises with the device, as any read-back must)."""
    if isinstance(a, np.ndarray):
        return a
    if type(a) is not CudaArray:
        raise DTypeError("to_host", f"expected a CudaArray, got {type(a).__name__}", a)
    _cudart.set_device(a.device)
    src = contiguous(a)
    host = np.empty(src.shape, src.dtype)
    _cudart.memcpy(host.ctypes.data, src.ptr, src.nbytes, _cudart.MEMCPY_D2H)
    faults.raise_pending(a.device)  # the copy waited for the device: report what its kernels found
    return host


def copy_between_devices(a: CudaArray, index: int) -> CudaArray:
    """A contiguous copy of ``a`` on cuda:``index`` (peer copy; a plain copy when it is already there)."""
    _cudart.set_device(a.device)
    src = contiguous(a)
    if src is a:
        from .elementwise import astype

        src = astype(a, a.dtype) if a.device == index else a
    if a.device == index:
        return src
    out = empty(index, src.shape, src.dtype)
    _cudart.memcpy_peer(out.ptr, index, src.ptr, a.device, src.nbytes)
    return out
