"""Indexing kernels with NumPy semantics: getitem, setitem, index_add.

Basic indices (ints, slices with any step, None, Ellipsis) give strided views with no device work. Advanced
indices (int64 arrays, bool masks, lists) are index *metadata*: the flat element offsets they select are
computed on the host with NumPy itself (so broadcasting, mixed basic/advanced indices and NumPy's rule for
where the advanced dims land are NumPy's own), then copied to the device, where gather/scatter kernels move
the data. Trailing dims the index leaves whole stay on the device as contiguous-in-spirit inner blocks, so
an embedding lookup ships one offset per row, not per element.

One integer CudaArray on one axis with every other axis whole (``w[idx]``, ``x[:, idx]``, ``x[..., idx]``: an
embedding lookup and its scatter-add backward) never leaves the device: a kernel computes the offsets, and
an index out of range is recorded there and raised at the next synchronisation (``faults``), like the
labels of a cross-entropy. Other CudaArray indices (bool masks, whose result size is data; several arrays)
are copied to the host first, which synchronises with the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import DTypeError, IndexingError, ShapeError

from . import _cudart, _lib, faults
from .creation import from_host_on, to_host
from .elementwise import add, astype, broadcast_shapes, check, copyto, python_scalar
from .layout import broadcast_to
from .storage import DTYPE_CODES, CudaArray, as_dtype, c_strides, contiguous, empty

_BASIC = (int, slice, np.integer, type(None), type(Ellipsis))


def _as_tuple(index: Any) -> tuple:
    return index if isinstance(index, tuple) else (index,)


def _host_index(op: str, item: Any) -> Any:
    """Index items as NumPy sees them: CudaArrays and lists become host arrays."""
    if type(item) is CudaArray:
        item = to_host(item)
    if isinstance(item, (list, np.ndarray)):
        arr = np.asarray(item)
        if arr.dtype == object or (arr.dtype.kind not in "biu" and arr.size):
            raise IndexingError(op, f"index arrays must be integer or bool, got {arr.dtype}")
        if arr.dtype == np.bool_:
            if arr.ndim == 0:
                raise IndexingError(op, "a bare bool index is not supported; use a bool mask array")
            return arr
        return arr.astype(np.int64)
    if isinstance(item, (bool, np.bool_)):
        raise IndexingError(op, "a bare bool index is not supported; use a bool mask array")
    if not isinstance(item, (int, np.integer, slice)) and item is not None and item is not Ellipsis:
        raise IndexingError(
            op,
            f"only integers, slices, None, Ellipsis and int/bool arrays are valid indices, "
            f"got {type(item).__name__}",
        )
    return item


def _expand(op: str, a: CudaArray, index: tuple) -> tuple[list, int]:
    """Replace Ellipsis by slices and count the dims the items consume (bool masks consume their ndim)."""
    consumed = sum(
        item.ndim
        if isinstance(item, np.ndarray) and item.dtype == np.bool_
        else (0 if item is None or item is Ellipsis else 1)
        for item in index
    )
    if consumed > len(a.shape):
        raise IndexingError(op, f"too many indices ({consumed}) for an array of {len(a.shape)} dims", a)
    if sum(item is Ellipsis for item in index) > 1:
        raise IndexingError(op, "an index can only have a single ellipsis", a)
    out: list = []
    for item in index:
        if item is Ellipsis:
            out.extend([slice(None)] * (len(a.shape) - consumed))
        else:
            out.append(item)
    if not any(item is Ellipsis for item in index):
        out.extend([slice(None)] * (len(a.shape) - consumed))
    return out, consumed


def _basic_view(op: str, a: CudaArray, items: list) -> CudaArray:
    shape, strides, offset, dim = [], [], a.offset, 0
    for item in items:
        if item is None:
            shape.append(1)
            strides.append(0)
        elif isinstance(item, slice):
            start, stop, step = item.indices(a.shape[dim])
            shape.append(len(range(start, stop, step)))
            strides.append(a.strides[dim] * step)
            offset += start * a.strides[dim]
            dim += 1
        else:
            i, n = int(item), a.shape[dim]
            if not -n <= i < n:
                raise IndexingError(op, f"index {i} is out of bounds for axis {dim} with size {n}", a)
            offset += (i % n) * a.strides[dim]
            dim += 1
    return a.view(tuple(shape), tuple(strides), offset)


def _offsets(op: str, a: CudaArray, items: list) -> tuple[np.ndarray, tuple[int, ...], CudaArray]:
    """Host int64 offsets of each selected row, the selection's outer shape, and the inner-block view."""
    # None becomes a real length-1 axis indexed by ':', exactly what NumPy's newaxis means.
    if any(item is None for item in items):
        shape, strides, plain, dim = [], [], [], 0
        for item in items:
            if item is None:
                shape.append(1)
                strides.append(0)
                plain.append(slice(None))
            else:
                k = item.ndim if isinstance(item, np.ndarray) and item.dtype == np.bool_ else 1
                shape.extend(a.shape[dim : dim + k])
                strides.extend(a.strides[dim : dim + k])
                plain.append(item)
                dim += k
        a, items = a.view(tuple(shape), tuple(strides), a.offset), plain
    flat: list = []
    for item in items:  # a bool mask is its nonzero() int arrays, one per dim it covers
        if isinstance(item, np.ndarray) and item.dtype == np.bool_:
            covered = a.shape[len(flat) : len(flat) + item.ndim]
            if item.shape != covered:
                raise IndexingError(
                    op, f"boolean index of shape {item.shape} does not match the indexed dims {covered}", a
                )
            flat.extend(np.nonzero(item))
        else:
            flat.append(item)
    last = max(i for i, item in enumerate(flat) if not (isinstance(item, slice) and item == slice(None)))
    prefix, inner_dims = flat[: last + 1], len(flat) - last - 1
    outer_shape, outer_strides = a.shape[: last + 1], a.strides[: last + 1]
    try:
        total = np.full((), a.offset, dtype=np.int64)
        for d, (n, s) in enumerate(zip(outer_shape, outer_strides, strict=True)):
            coords = (np.arange(n, dtype=np.int64) * s).reshape((n,) + (1,) * (len(outer_shape) - d - 1))
            total = total + np.broadcast_to(coords, outer_shape)[tuple(prefix)]
    except IndexError as exc:
        raise IndexingError(op, str(exc), a) from None
    inner = a.view(a.shape[len(a.shape) - inner_dims :], a.strides[len(a.shape) - inner_dims :], 0)
    return np.ascontiguousarray(total, dtype=np.int64), tuple(total.shape), inner


def _prepare(op: str, a: CudaArray, index: Any) -> tuple[bool, Any]:
    if type(a) is not CudaArray:
        raise DTypeError(op, "expected a CudaArray", a)
    _cudart.set_device(a.device)
    index = tuple(_host_index(op, item) for item in _as_tuple(index))
    items, _ = _expand(op, a, index)
    basic = all(isinstance(item, _BASIC) for item in items)
    return basic, items


_FAST_TYPES = (int, slice, type(None))


def _fast_basic(a: CudaArray, index: Any) -> CudaArray | None:
    """The view for an index of plain ints/slices/None (the hot case), or None to take the general path."""
    if type(index) is not tuple:
        index = (index,)
    nd, dim = len(a.shape), 0
    shape, strides, offset = [], [], a.offset
    for item in index:
        t = type(item)
        if t is slice:
            if dim >= nd:
                return None
            start, stop, step = item.indices(a.shape[dim])
            shape.append(len(range(start, stop, step)))
            strides.append(a.strides[dim] * step)
            offset += start * a.strides[dim]
            dim += 1
        elif t is int:
            if dim >= nd or not -a.shape[dim] <= item < a.shape[dim]:
                return None
            offset += (item % a.shape[dim]) * a.strides[dim]
            dim += 1
        elif item is None:
            shape.append(1)
            strides.append(0)
        else:
            return None
    return a.view(tuple(shape) + a.shape[dim:], tuple(strides) + a.strides[dim:], offset)


def _device_axis(op: str, a: CudaArray, index: Any) -> tuple[int, CudaArray] | None:
    """(axis, index) when ``index`` is one integer CudaArray on one axis and every other item is ``:`` or
    one Ellipsis; None for anything else (the host path)."""
    items = _as_tuple(index)
    at = [i for i, item in enumerate(items) if type(item) is CudaArray]
    if len(at) != 1 or type(a) is not CudaArray or items[at[0]].dtype.kind not in "iu":
        return None
    before, after = items[: at[0]], items[at[0] + 1 :]
    rest = before + after
    if sum(item is Ellipsis for item in rest) > 1 or not all(
        item is Ellipsis or (type(item) is slice and item == slice(None)) for item in rest
    ):
        return None
    has_ellipsis = any(item is Ellipsis for item in rest)
    if len(items) - has_ellipsis > len(a.shape):
        raise IndexingError(op, f"too many indices ({len(items) - has_ellipsis}) for an array of "
                                f"{len(a.shape)} dims", a)
    axis = len(a.shape) - 1 - len(after) if any(item is Ellipsis for item in before) else len(before)
    idx = items[at[0]]
    if idx.device != a.device:
        from keydnn.domain.errors import DeviceMismatchError

        raise DeviceMismatchError(op, f"index on cuda:{idx.device}, array on cuda:{a.device}", a, idx)
    return axis, idx


def _bounds_error(element: int, value: int, op: str, axis: int, size: int, shape: tuple) -> IndexingError:
    return IndexingError(op, f"index {value} (element {element} of the index array) is out of bounds for "
                             f"axis {axis} with size {size} in an array of shape {shape}")


def _device_offsets(op: str, a: CudaArray, axis: int, idx: CudaArray) -> tuple[CudaArray, tuple, CudaArray]:
    """Device int64 offsets of each selected row, the selection's outer shape, and the inner-block view."""
    _cudart.set_device(a.device)
    idx = contiguous(idx if idx.dtype == np.int64 else astype(idx, np.int64))
    outer_shape = a.shape[:axis]
    outer = 1
    for n in outer_shape:
        outer *= n
    offsets = empty((outer * idx.size,), np.dtype(np.int64), a.device)
    it = _lib.pack_iter(outer_shape, c_strides(outer_shape), a.strides[:axis]) if axis else None
    fault, ticket = faults.claim(a.device, _bounds_error, (op, axis, a.shape[axis], a.shape))
    check(_lib.lib.kd_index_offsets(offsets.ptr, idx.ptr, idx.size, a.shape[axis], a.strides[axis], a.offset,
                                    outer, it, fault, ticket), op)
    inner = a.view(a.shape[axis + 1 :], a.strides[axis + 1 :], 0)
    return offsets, outer_shape + idx.shape, inner


def getitem(a: CudaArray, index: Any) -> CudaArray:
    if type(a) is CudaArray:
        view = _fast_basic(a, index)
        if view is not None:
            return view
    on_device = _device_axis("getitem", a, index)
    if on_device is not None:
        dev_offsets, outer_shape, inner = _device_offsets("getitem", a, *on_device)
        return _gather(a, dev_offsets, outer_shape, inner)
    basic, items = _prepare("getitem", a, index)
    if basic:
        return _basic_view("getitem", a, items)
    offsets, outer_shape, inner = _offsets("getitem", a, items)
    return _gather(a, offsets, outer_shape, inner)


def _rows(outer_shape: tuple) -> int:
    rows = 1
    for n in outer_shape:
        rows *= n
    return rows


def _gather(a: CudaArray, offsets: Any, outer_shape: tuple, inner: CudaArray) -> CudaArray:
    """Rows of ``inner`` at ``offsets`` (host int64 offsets, copied over, or a device array of them)."""
    out = empty(outer_shape + inner.shape, a.dtype, a.device)
    if out.size:
        if type(offsets) is not CudaArray:
            offsets = from_host_on(offsets.reshape(-1), a.device)
        it = _lib.pack_iter(inner.shape, c_strides(inner.shape), inner.strides)
        check(_lib.lib.kd_gather(DTYPE_CODES[a.dtype], out.ptr, a.buffer.ptr, offsets.ptr, _rows(outer_shape),
                                 it), "getitem")
    return out


def _values_for(op: str, values: Any, shape: tuple[int, ...], dtype: np.dtype, device: int) -> CudaArray:
    """``values`` as a contiguous device array of ``shape`` and ``dtype`` (broadcast and cast like NumPy)."""
    if isinstance(values, (np.ndarray, list)):
        values = from_host_on(np.asarray(values), device)
    if type(values) is not CudaArray:
        out = empty(shape, dtype, device)
        copyto(out, python_scalar(op, values))
        return out
    if values.device != device:
        from keydnn.domain.errors import DeviceMismatchError

        raise DeviceMismatchError(op, f"values on cuda:{values.device}, array on cuda:{device}", values)
    if broadcast_shapes(op, shape, values.shape) != shape:
        raise ShapeError(op, f"cannot broadcast values of shape {values.shape} to {shape}", values)
    if values.shape == shape and values.dtype == dtype:
        return contiguous(values)
    out = empty(shape, dtype, device)
    copyto(out, broadcast_to(values, shape))
    return out


def _scatter(op: str, a: CudaArray, items: list, values: Any, accumulate: bool) -> None:
    offsets, outer_shape, inner = _offsets(op, a, items)
    _scatter_rows(op, a, offsets, outer_shape, inner, values, accumulate)


def _scatter_rows(op: str, a: CudaArray, offsets: Any, outer_shape: tuple, inner: CudaArray, values: Any,
                  accumulate: bool) -> None:
    vals = _values_for(op, values, outer_shape + inner.shape, a.dtype, a.device)
    if vals.size == 0:
        return
    if type(offsets) is not CudaArray:
        offsets = from_host_on(offsets.reshape(-1), a.device)
    it = _lib.pack_iter(inner.shape, c_strides(inner.shape), inner.strides)
    check(
        _lib.lib.kd_scatter(
            DTYPE_CODES[a.dtype], a.buffer.ptr, offsets.ptr, vals.ptr, _rows(outer_shape), it, int(accumulate)
        ),
        op,
    )


def _scatter_on_device(op: str, a: CudaArray, index: Any, values: Any, accumulate: bool) -> bool:
    """Scatter through device-computed offsets when the index allows it; False to take the host path."""
    on_device = _device_axis(op, a, index)
    if on_device is None:
        return False
    offsets, outer_shape, inner = _device_offsets(op, a, *on_device)
    _scatter_rows(op, a, offsets, outer_shape, inner, values, accumulate)
    return True


def setitem(a: CudaArray, index: Any, values: Any) -> None:
    """a[index] = values. With repeated advanced indices one of the writes wins, as in NumPy."""
    if _scatter_on_device("setitem", a, index, values, accumulate=False):
        return
    basic, items = _prepare("setitem", a, index)
    if basic:
        view = _basic_view("setitem", a, items)
        if isinstance(values, (np.ndarray, list)):
            values = from_host_on(np.asarray(values), a.device)
        copyto(view, values)
        return
    _scatter("setitem", a, items, values, accumulate=False)


def index_add(shape: Any, dtype: Any, index: Any, values: Any) -> CudaArray:
    """zeros(shape) with ``values`` added at ``index``; repeated indices accumulate (atomicAdd)."""
    if type(values) is not CudaArray:
        raise DTypeError("index_add", "values must be a CudaArray", values)
    dt = as_dtype(dtype, "index_add")
    if dt == np.bool_:
        raise DTypeError("index_add", "cannot accumulate bool values", values)
    _cudart.set_device(values.device)
    out = empty(tuple(int(n) for n in shape), dt, values.device)
    copyto(out, 0)
    if _scatter_on_device("index_add", out, index, values, accumulate=True):
        return out
    basic, items = _prepare("index_add", out, index)
    if basic:
        view = _basic_view("index_add", out, items)
        add(view, values if values.dtype == dt else astype(values, dt), out=view)
        return out
    _scatter("index_add", out, items, values, accumulate=True)
    return out
