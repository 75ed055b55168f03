"""Fused multi-tensor optimizer kernels: one launch per 48 parameters updates params (and momentum / Adam
moments) in place. Semantics are the NumPy reference's (``backends/numpy/nn.py``).

Under CUDA graph capture Adam's bias corrections, which change with the step, come from a two-element device
array that a replay hook fills (with kd_adam_scalars, the eager path's own arithmetic) before each replay, so
N replays compute what N eager steps do, bit for bit.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, DTypeError, ShapeError
from keydnn.infrastructure import capture

from . import _cudart, _lib
from .elementwise import astype
from .storage import DTYPE_CODES, CudaArray, contiguous


def _check_group(op: str, k: int, group: list, params: list, dtype: Any, device: int) -> list[int]:
    """Device pointers of one tensor list after checking it against the parameters. Gradients (k == 1) of
    another dtype or layout are converted in place in ``group`` (kept alive until the launch)."""
    ptrs = [0] * len(group)
    for i, (x, p) in enumerate(zip(group, params, strict=True)):
        if (
            type(x) is CudaArray
            and x.dtype is dtype
            and x.is_contiguous
            and x.shape == p.shape
            and x.device == device
        ):
            ptrs[i] = x.ptr
            continue
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
            x = group[i] = contiguous(x) if x.dtype == dtype else astype(x, dtype)
        ptrs[i] = x.ptr
    return ptrs


# The optimizer passes the same params/bufs/moments lists every step: their checked pointer arrays are
# kept, keyed by the arrays' identities and validated through weak references (so a cached entry never
# keeps a dead model's memory alive, and a reused id never matches a different array).
_STABLE: dict[tuple, tuple[list, Any]] = {}


def _cached(key: tuple, arrays: list, build: Any) -> Any:
    entry = _STABLE.get(key)
    if entry is not None and [ref() for ref in entry[0]] == arrays:  # CudaArray == is identity
        return entry[1]
    if len(_STABLE) >= 64:
        _STABLE.clear()
    value = build()
    _STABLE[key] = ([weakref.ref(x) for x in arrays], value)
    return value


def _pointer_table(op: str, groups: list[list], dtype: Any, device: int) -> tuple[list, Any]:
    """One ctypes pointer array per group (params, grads, ...) and the sizes array, after checks."""
    n = len(groups[0])
    if any(len(g) != n for g in groups):
        raise ShapeError(op, f"tensor lists differ in length: {[len(g) for g in groups]}")
    params = groups[0]
    # The sizes entry stands for "these params were checked"; other groups' entries are keyed on it.
    sizes = _cached(
        (-1, *map(id, params)),
        params,
        lambda: (_lib.int64_array([p.size for p in params]), object()),
    )
    tables = []
    for k, group in enumerate(groups):
        if k == 1:  # gradients are new arrays every step
            tables.append(_lib.pointer_array(_check_group(op, k, group, params, dtype, device)))
            continue
        tables.append(
            _cached(
                (k, id(sizes[1]), *map(id, group)),
                group,
                lambda k=k, group=group: _lib.pointer_array(
                    _check_group(op, k, group, params, dtype, device)
                ),
            )
        )
    return tables, sizes[0]


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
    scalars = _replayed_scalars(dtype, device, int(step), lr, beta1, beta2) if capture.capturing() else None
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
        scalars,
    )
    if status:
        _lib.check(status, op)


def _replayed_scalars(dtype: Any, device: int, step: int, lr: float, beta1: float, beta2: float) -> int:
    """Address of the device array a captured Adam launch reads its bias corrections from. Its replay hook,
    called with the steps taken since the captured one (0 for the first replay: the capture itself ran
    nothing; the optimizer passes the count), writes those of step ``step + since`` there first."""
    code, lr, beta1, beta2 = DTYPE_CODES[dtype], float(lr), float(beta1), float(beta2)
    # A block of its own, not one from the graph's pool: that pool hands blocks freed earlier in the capture
    # to later requests, so a pooled slot can share its address with a temporary that the graph writes
    # before the Adam kernel runs, and every replay would overwrite the corrections the hook just wrote
    # (seen on the H200: replayed Adam steps diverged from the first replay on). The hook keeps the slot
    # alive as long as the graph; the slot's finaliser frees it.
    slot = _ScalarSlot(2 * np.dtype(dtype).itemsize, device)
    host = np.empty(2, dtype)

    def write(since: int) -> None:
        _lib.check(_lib.lib.kd_adam_scalars(code, lr, beta1, beta2, step + since, host.ctypes.data),
                   "adam_step")
        _cudart.set_device(device)
        _cudart.memcpy_h2d_async(slot.ptr, host.ctypes.data, host.nbytes)

    capture.on_replay(write)
    return slot.ptr


class _ScalarSlot:
    """A few bytes of device memory from cudaMalloc (allowed in the relaxed capture mode KeyDNN captures in),
    outside every allocator pool, freed when the last replay hook holding it goes."""

    def __init__(self, nbytes: int, device: int) -> None:
        _cudart.set_device(device)
        ptr = _cudart.malloc(nbytes)
        if ptr <= 0:
            _cudart.check(-ptr or 2, "adam_step: cudaMalloc of the replayed bias corrections")
        self.ptr, self.device = ptr, device
        weakref.finalize(self, _free_slot, ptr, device)


_deferred_slots: list[tuple[int, int]] = []  # slots that died while a graph was being captured


def _free_slot(ptr: int, device: int) -> None:
    _deferred_slots.append((ptr, device))
    if _cudart.capturing:  # cudaFree would end the capture in progress: free them after it
        return
    try:
        current = _cudart.get_device()
        while _deferred_slots:
            p, d = _deferred_slots.pop()
            _cudart.set_device(d)
            _cudart.free(p)  # cudaFree waits for the device: no replay can still be reading it
        _cudart.set_device(current)
    except Exception:  # interpreter shutdown, or the driver is gone: it reclaims the memory itself
        pass
