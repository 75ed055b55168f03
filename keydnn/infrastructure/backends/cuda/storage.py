"""Device storage: ``CudaArray``, a strided view (shape, element strides, offset) on an allocator Block.

Views share their Block, which returns to the cache when the last view dies. There is deliberately no
``__array__``: moving data to the host is always an explicit ``to_host``.
"""

from __future__ import annotations

import numpy as np

from keydnn.domain.errors import DTypeError

from . import allocator
from .allocator import Block

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))
# Codes shared with native/include/keydnn_cuda.h (KD_F32 ...).
DTYPE_CODES = {dt: i for i, dt in enumerate(SUPPORTED_DTYPES)}


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
    """A strided view of device memory. Strides and offset are counted in elements."""

    __slots__ = (
        "shape",
        "dtype",
        "strides",
        "offset",
        "device",
        "buffer",
        "size",
        "itemsize",
        "is_contiguous",
        "ptr",
        "__weakref__",
    )

    def __init__(
        self,
        buffer: Block,
        shape: tuple[int, ...],
        dtype: np.dtype,
        strides: tuple[int, ...] | None = None,
        offset: int = 0,
    ) -> None:
        self.buffer = buffer
        self.device = buffer.device
        self.shape = shape
        self.dtype = dtype
        self.itemsize = dtype.itemsize
        self.offset = offset
        self.ptr = buffer.ptr + offset * self.itemsize  # device address of the first element (fixed per view)
        size = 1
        for n in shape:
            size *= n
        self.size = size
        if strides is None:
            self.strides = c_strides(shape)
            self.is_contiguous = True
        else:
            self.strides = strides
            self.is_contiguous = _is_c_contiguous(shape, strides)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def view(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int) -> CudaArray:
        """Another view of the same memory."""
        return CudaArray(self.buffer, shape, self.dtype, strides, offset)

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


def empty(shape: tuple[int, ...], dtype: object, device: int) -> CudaArray:
    """A new contiguous, uninitialised array from the caching allocator."""
    shape = tuple(int(n) for n in shape)
    dt = as_dtype(dtype, "empty")
    size = 1
    for n in shape:
        size *= n
    return CudaArray(allocator.allocate(size * dt.itemsize, device), shape, dt)


def new(shape: tuple[int, ...], dtype: np.dtype, device: int) -> CudaArray:
    """``empty`` for callers whose shape is already a tuple of ints and dtype a supported np.dtype."""
    size = 1
    for n in shape:
        size *= n
    return CudaArray(allocator.allocate(size * dtype.itemsize, device), shape, dtype)


def contiguous(a: CudaArray) -> CudaArray:
    """``a`` itself when C-contiguous, else a contiguous copy on the same device."""
    if a.is_contiguous:
        return a
    from .elementwise import copy_strided  # the copy kernel lives with the elementwise family

    out = new(a.shape, a.dtype, a.device)
    copy_strided(out, a)
    return out
