"""Device storage: ``CudaArray``, a strided view (shape, element strides, offset) of a caching-allocator block.

The array that took the block owns it; views hold their owner, and the block returns to the cache when the
owner and every view are gone. There is deliberately no ``__array__``: moving data to the host is always an
explicit ``to_host``.
"""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError

from . import allocator

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))
# Codes shared with native/include/keydnn_cuda.h (KD_F32 ...).
DTYPE_CODES = {dt: i for i, dt in enumerate(SUPPORTED_DTYPES)}
BYTE = np.dtype(np.bool_)  # the one-byte dtype raw workspaces are counted in


def as_dtype(dtype: object, op: str = "cuda") -> np.dtype:
    """np.dtype(dtype), refusing the dtypes CUDA storage does not hold."""
    dt = np.dtype(dtype)
    if dt not in DTYPE_CODES:
        raise DTypeError(op, f"dtype {dt} is not supported on CUDA (float32, float64, int64, bool)")
    return dt


_STRIDES: dict[tuple[int, ...], tuple[int, ...]] = {}


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-contiguous strides, in elements (memoised: kernels ask for the same few shapes again and again)."""
    strides = _STRIDES.get(shape)
    if strides is None:
        acc, out = 1, []
        for n in reversed(shape):
            out.append(acc)
            acc *= n
        strides = tuple(reversed(out))
        if len(_STRIDES) < 4096:
            _STRIDES[shape] = strides
    return strides


def _is_c_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    acc = 1
    for n, s in zip(reversed(shape), reversed(strides), strict=True):
        if n == 0:
            return True
        if n != 1 and s != acc:
            return False
        acc *= n
    return True


class CudaArray:
    """A strided view of device memory. Strides and offset are counted in elements.

    An array made by ``new``/``empty`` owns its block (``base`` is None) and gives it back to the caching
    allocator when it dies; a view keeps its owner alive through ``base`` and has an offset into it.
    Construct arrays with ``new``, ``empty`` or ``view``: there is no public constructor.
    """

    __slots__ = (
        "shape",
        "dtype",
        "strides",
        "offset",
        "device",
        "base",
        "size",
        "itemsize",
        "is_contiguous",
        "ptr",
        "_pool",
        "_block_size",
        "__weakref__",
    )

    def __del__(self) -> None:
        pool = self._pool
        if pool is not None:  # an owner: its block goes back to the cache
            self._pool = None
            pool.release(self.ptr, self._block_size)

    @property
    def buffer(self) -> CudaArray:
        """The array that owns this memory (itself for an owner); ``ptr`` of it is the block's start."""
        return self if self.base is None else self.base

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def view(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> CudaArray:
        """Another view of the same memory; ``offset`` counts elements from the owner's start."""
        owner = self if self.base is None else self.base
        v = object.__new__(CudaArray)
        v._pool, v._block_size, v.base = None, 0, owner
        v.device, v.dtype, v.itemsize = self.device, self.dtype, self.itemsize
        v.shape, v.strides, v.offset = shape, strides, offset
        v.ptr = owner.ptr + offset * self.itemsize  # device address of the first element (fixed per view)
        size = 1
        for n in shape:
            size *= n
        v.size = size
        v.is_contiguous = _is_c_contiguous(shape, strides)
        return v

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d CudaArray")
        return self.shape[0]

    def __repr__(self) -> str:
        layout = "" if self.is_contiguous else f", strides={self.strides}"
        return (
            f"CudaArray(shape={self.shape}, dtype={self.dtype}, device=cuda:{self.device}"
            f"{layout}, offset={self.offset})"
        )


def new(shape: tuple[int, ...], dtype: np.dtype, device: int) -> CudaArray:
    """A new contiguous, uninitialised array owning a block of the caching allocator. ``shape`` must be a
    tuple of ints and ``dtype`` a supported np.dtype (``empty`` converts and checks)."""
    size = 1
    for n in shape:
        size *= n
    # Every op's output comes through here, so lookups are inlined where a helper call would cost as much.
    pool = allocator.pools.get(device) or allocator.allocator(device)
    ptr, block_size = pool.take(size * dtype.itemsize)
    a = object.__new__(CudaArray)  # new() and view() set every slot: there is no __init__ to run
    a._pool, a._block_size, a.ptr, a.base = pool if block_size else None, block_size, ptr, None
    a.device, a.dtype, a.itemsize = device, dtype, dtype.itemsize
    a.shape, a.strides, a.offset = shape, _STRIDES.get(shape) or c_strides(shape), 0
    a.size, a.is_contiguous = size, True
    return a


def empty(shape: tuple[int, ...], dtype: object, device: int) -> CudaArray:
    """A new contiguous, uninitialised array from the caching allocator."""
    return new(tuple(int(n) for n in shape), as_dtype(dtype, "empty"), device)


def workspace(nbytes: int, device: int) -> CudaArray:
    """Scratch bytes for a kernel or library call, back in the cache once the caller drops them."""
    return new((int(nbytes),), BYTE, device)


def contiguous(a: CudaArray) -> CudaArray:
    """``a`` itself when C-contiguous, else a contiguous copy on the same device."""
    if a.is_contiguous:
        return a
    from .elementwise import copy_strided  # the copy kernel lives with the elementwise family

    out = new(a.shape, a.dtype, a.device)
    copy_strided(out, a)
    return out
