"""Elementwise CUDA kernels: binary/compare ops with NumPy broadcasting and promotion, unary ops, clip,
where, astype and copyto. Same-shape contiguous operands take the library's vectorised path; anything else
passes a packed broadcast iteration space; Python scalars go to scalar kernels (no device tensor is made).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.errors import DeviceMismatchError, DTypeError, ShapeError

from . import _cudart, _lib
from .storage import DTYPE_CODES, CudaArray, c_strides, empty, new

F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
_SCALARS = (int, float, bool, np.integer, np.floating, np.bool_)
_COMPARE = {_lib.EQ, _lib.NE, _lib.LT, _lib.LE, _lib.GT, _lib.GE}
pack_binary, pack_scalar = _lib.pack_binary, _lib.pack_binary_scalar


def broadcast_shapes(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    nd = max(len(s) for s in shapes)
    out = []
    for d in range(nd):
        size = 1
        for s in shapes:
            k = d - nd + len(s)
            if k >= 0 and s[k] != 1:
                if size != 1 and s[k] != size:
                    raise ShapeError(op, f"shapes {', '.join(map(str, shapes))} cannot be broadcast together")
                size = s[k]
        out.append(size)
    return tuple(out)


def broadcast_strides(a: CudaArray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``a``'s strides when broadcast to ``shape`` (0 along broadcast dims)."""
    lead = len(shape) - len(a.shape)
    return (0,) * lead + tuple(0 if n == 1 else s for n, s in zip(a.shape, a.strides, strict=True))


def same_device(op: str, *arrays: Any) -> int:
    device = None
    for x in arrays:
        if type(x) is CudaArray:
            if device is None:
                device = x.device
            elif x.device != device:
                raise DeviceMismatchError(op, f"operands on cuda:{device} and cuda:{x.device}", *arrays)
    if device is None:
        raise DTypeError(op, "expected at least one CudaArray operand", *arrays)
    _cudart.set_device(device)
    return device


def check(status: int, op: str) -> None:
    if status:
        _lib.check(status, op)


def scalar_dtype(array_dtype: np.dtype, value: Any) -> np.dtype:
    """NumPy 2 (NEP 50) promotion of an array with a Python scalar: the scalar is 'weak'."""
    if isinstance(value, (bool, np.bool_)):
        return array_dtype
    if isinstance(value, (int, np.integer)):
        return I64 if array_dtype == BOOL else array_dtype
    return array_dtype if array_dtype.kind == "f" else F64


def python_scalar(op: str, value: Any) -> float | int | bool:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise DTypeError(op, f"operand of type {type(value).__name__} is neither a CudaArray nor a number")


def astype(a: CudaArray, dtype: Any) -> CudaArray:
    """A contiguous copy of ``a`` converted to ``dtype``."""
    dt = np.dtype(dtype)
    code = DTYPE_CODES.get(dt)
    if code is None:
        raise DTypeError("astype", f"dtype {dt} is not supported on CUDA", a)
    _cudart.set_device(a.device)
    out = empty(a.shape, dt, a.device)
    it = None if a.is_contiguous else _lib.pack_iter(a.shape, out.strides, a.strides)
    check(_lib.lib.kd_cast(_lib.pack_cast(code, DTYPE_CODES[a.dtype], out.ptr, a.ptr, a.size), it), "astype")
    return out


def copy_strided(dst: CudaArray, src: CudaArray) -> None:
    """dst[...] = src for arrays of one shape (any strides, any dtypes)."""
    it = (
        None
        if dst.is_contiguous and src.is_contiguous
        else _lib.pack_iter(dst.shape, dst.strides, src.strides)
    )
    _cast(dst, src, it)


def fill(dst: CudaArray, value: float | int | bool, op: str, it: bytes | None = None) -> None:
    """dst[...] = value (a Python number; ``it`` describes dst's layout when it is not contiguous)."""
    record = _lib.pack_fill(DTYPE_CODES[dst.dtype], 0, dst.ptr, *_lib.scalar_parts(value), dst.size)
    check(_lib.lib.kd_fill(record, it), op)


def _cast(dst: CudaArray, src: CudaArray, it: bytes | None) -> None:
    record = _lib.pack_cast(DTYPE_CODES[dst.dtype], DTYPE_CODES[src.dtype], dst.ptr, src.ptr, dst.size)
    check(_lib.lib.kd_cast(record, it), "copyto")


def _overlaps(a: CudaArray, b: CudaArray) -> bool:
    if a.buffer is not b.buffer:
        return False
    return not (a.offset == b.offset and a.strides == b.strides and a.shape == b.shape)


def copyto(dst: CudaArray, src: Any) -> None:
    """dst[...] = src: src (array, host ndarray or scalar) broadcast to dst's shape and cast to its dtype."""
    if type(dst) is not CudaArray:
        raise DTypeError("copyto", "destination must be a CudaArray", dst)
    _cudart.set_device(dst.device)
    if isinstance(src, np.ndarray):
        from .creation import from_host_on

        src = from_host_on(src, dst.device)
    if type(src) is not CudaArray:
        value = python_scalar("copyto", src)
        it = None if dst.is_contiguous else _lib.pack_iter(dst.shape, dst.strides)
        fill(dst, value, "copyto", it)
        return
    same_device("copyto", dst, src)
    if src.shape != dst.shape:
        if broadcast_shapes("copyto", dst.shape, src.shape) != dst.shape:
            raise ShapeError("copyto", f"cannot broadcast {src.shape} into {dst.shape}", dst, src)
    if _overlaps(dst, src):  # NumPy copies through a buffer when views overlap; so do we
        src = astype(src, src.dtype)
    if src.shape == dst.shape and dst.is_contiguous and src.is_contiguous:
        it = None
    else:
        it = _lib.pack_iter(dst.shape, dst.strides, broadcast_strides(src, dst.shape))
    _cast(dst, src, it)


def _result_out(op: str, out: CudaArray | None, shape: tuple[int, ...], dtype: np.dtype, device: int):
    """(array the kernel writes, array to copy into afterwards or None)."""
    if out is None:
        return empty(shape, dtype, device), None
    if type(out) is not CudaArray:
        raise DTypeError(op, "out= must be a CudaArray", out)
    if out.shape != shape:
        raise ShapeError(op, f"out= has shape {out.shape}, the result has shape {shape}", out)
    if out.device != device:
        raise DeviceMismatchError(op, f"out= is on cuda:{out.device}, operands on cuda:{device}", out)
    if out.dtype != dtype:
        return empty(shape, dtype, device), out
    return out, None


_PLANS: dict[tuple, tuple] = {}


def _broadcast_plan(name: str, a: CudaArray, b: CudaArray, out: CudaArray | None) -> tuple:
    """(shape, packed iteration or None) for ``a op b``; memoised on the layouts, since a training loop
    broadcasts the same few layouts every step."""
    key = (a.shape, a.strides, b.shape, b.strides, None if out is None else out.strides)
    plan = _PLANS.get(key)
    if plan is None:
        shape = a.shape if a.shape == b.shape else broadcast_shapes(name, a.shape, b.shape)
        out_strides = c_strides(shape) if out is None else out.strides
        if a.shape == b.shape and a.is_contiguous and b.is_contiguous and (out is None or out.is_contiguous):
            plan = (shape, None)
        else:
            plan = (
                shape,
                _lib.pack_iter(shape, out_strides, broadcast_strides(a, shape), broadcast_strides(b, shape)),
            )
        if len(_PLANS) < 4096:
            _PLANS[key] = plan
    return plan


def _binary(name: str, code: int):
    compare = code in _COMPARE
    ufunc = getattr(np, {"relu_backward": "multiply"}.get(name, name))
    fast = not compare  # arithmetic keeps its operands' dtype: the fast path below needs no promotion
    true_divide = code == _lib.DIV  # ... except integer division, which gives float64

    def kernel(a: Any, b: Any, out: CudaArray | None = None) -> CudaArray:
        a_arr, b_arr = type(a) is CudaArray, type(b) is CudaArray
        if (
            fast
            and a_arr
            and b_arr
            and a.dtype is b.dtype
            and a.device == b.device
            and a.dtype is not BOOL
            and (not true_divide or a.dtype.kind == "f")
        ):
            # The common case: same dtype, same device, arithmetic.
            if a.device != _cudart.current_device:
                _cudart.set_device(a.device)
            if out is None and a.shape == b.shape and a.is_contiguous and b.is_contiguous:
                shape, it = a.shape, None  # the vectorised path needs no iteration space
            else:
                shape, it = _broadcast_plan(name, a, b, out)
            if out is None:
                res = new(shape, a.dtype, a.device)
            elif (
                type(out) is CudaArray
                and out.shape == shape
                and out.dtype is a.dtype
                and out.device == a.device
            ):
                res = out
            else:
                return _general(a, b, out)
            status = _lib.lib.kd_binary(pack_binary(code, DTYPE_CODES[a.dtype], res.ptr, a.ptr, b.ptr, res.size), it)
            if status:
                _lib.check(status, name)
            return res
        if out is None and (a_arr ^ b_arr):
            arr, value, left = (a, b, 0) if a_arr else (b, a, 1)
            if (type(value) is float or type(value) is int) and arr.dtype.kind == "f":
                # Float array with a Python number: the array's dtype wins (NEP 50), no promotion to check.
                if arr.device != _cudart.current_device:
                    _cudart.set_device(arr.device)
                res = new(arr.shape, BOOL if compare else arr.dtype, arr.device)
                # the kernel reads the array as operand 1 (scalar right) or 2 (scalar left): give both its strides
                it = None if arr.is_contiguous else _lib.pack_iter(arr.shape, res.strides, arr.strides, arr.strides)
                f, i = _lib.scalar_parts(value)
                status = _lib.lib.kd_binary_scalar(
                    pack_scalar(code, DTYPE_CODES[arr.dtype], res.ptr, arr.ptr, f, i, left, 0, res.size), it
                )
                if status:
                    _lib.check(status, name)
                return res
        if not a_arr and not b_arr:
            # Two scalars (an op's backward may combine constants): a host scalar, as NumPy would give.
            value = ufunc(python_scalar(name, a), python_scalar(name, b))
            if code == _lib.RELU_BACKWARD:
                value = a if b > 0 else 0 * a
            if out is not None:
                copyto(out, value.item() if hasattr(value, "item") else value)
                return out
            return value.item() if hasattr(value, "item") else value
        return _general(a, b, out)

    def _general(a: Any, b: Any, out: CudaArray | None) -> CudaArray:
        a_arr, b_arr = type(a) is CudaArray, type(b) is CudaArray
        device = same_device(name, a, b)
        if a_arr and b_arr:
            dt = a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype)
        elif a_arr:
            b = python_scalar(name, b)
            dt = scalar_dtype(a.dtype, b)
        else:
            a = python_scalar(name, a)
            dt = scalar_dtype(b.dtype, a)
        if not compare:
            if dt == BOOL:
                raise DTypeError(name, "arithmetic on bool arrays is not supported; cast first", a, b)
            if code == _lib.DIV and dt.kind != "f":
                dt = F64  # true division
        if a_arr and a.dtype != dt:
            a = astype(a, dt)
        if b_arr and b.dtype != dt:
            b = astype(b, dt)
        lib = _lib.lib
        if a_arr and b_arr:
            shape = a.shape if a.shape == b.shape else broadcast_shapes(name, a.shape, b.shape)
            res, final = _result_out(name, out, shape, BOOL if compare else dt, device)
            _, it = _broadcast_plan(name, a, b, res)
            check(lib.kd_binary(pack_binary(code, DTYPE_CODES[dt], res.ptr, a.ptr, b.ptr, res.size), it), name)
        else:
            arr, value, left = (a, b, 0) if a_arr else (b, a, 1)
            res, final = _result_out(name, out, arr.shape, BOOL if compare else dt, device)
            it = (
                None
                if arr.is_contiguous and res.is_contiguous
                else _lib.pack_iter(arr.shape, res.strides, arr.strides)
            )
            f, i = _lib.scalar_parts(value)
            record = pack_scalar(code, DTYPE_CODES[dt], res.ptr, arr.ptr, f, i, left, 0, res.size)
            check(lib.kd_binary_scalar(record, it), name)
        if final is not None:
            copyto(final, res)
            return final
        return res

    kernel.__name__ = kernel.__qualname__ = name
    return kernel


add = _binary("add", _lib.ADD)
subtract = _binary("subtract", _lib.SUB)
multiply = _binary("multiply", _lib.MUL)
divide = _binary("divide", _lib.DIV)
power = _binary("power", _lib.POW)
maximum = _binary("maximum", _lib.MAXIMUM)
minimum = _binary("minimum", _lib.MINIMUM)
equal = _binary("equal", _lib.EQ)
not_equal = _binary("not_equal", _lib.NE)
less = _binary("less", _lib.LT)
less_equal = _binary("less_equal", _lib.LE)
greater = _binary("greater", _lib.GT)
greater_equal = _binary("greater_equal", _lib.GE)
_relu_backward = _binary("relu_backward", _lib.RELU_BACKWARD)


def relu_backward(g: CudaArray, y: CudaArray) -> CudaArray:
    """g where y > 0 else 0, in g's dtype."""
    if type(y) is CudaArray and type(g) is CudaArray and y.dtype != g.dtype:
        y = astype(y, g.dtype)
    return _relu_backward(g, y)


_FLOAT_ONLY = {_lib.EXP, _lib.LOG, _lib.SQRT, _lib.TANH, _lib.SIGMOID}


def _unary(name: str, code: int):
    def kernel(a: CudaArray) -> CudaArray:
        if type(a) is not CudaArray:
            raise DTypeError(name, "expected a CudaArray", a)
        _cudart.set_device(a.device)
        if a.dtype == BOOL:
            if code != _lib.ABS:
                raise DTypeError(name, "not defined for bool arrays", a)
            return astype(a, BOOL)
        if code in _FLOAT_ONLY and a.dtype.kind != "f":
            a = astype(a, F64)
        out = empty(a.shape, a.dtype, a.device)
        it = None if a.is_contiguous else _lib.pack_iter(a.shape, out.strides, a.strides)
        check(_lib.lib.kd_unary(_lib.pack_unary(code, DTYPE_CODES[a.dtype], out.ptr, a.ptr, a.size), it), name)
        return out

    kernel.__name__ = kernel.__qualname__ = name
    return kernel


negative = _unary("negative", _lib.NEG)
exp = _unary("exp", _lib.EXP)
log = _unary("log", _lib.LOG)
sqrt = _unary("sqrt", _lib.SQRT)
tanh = _unary("tanh", _lib.TANH)
sigmoid = _unary("sigmoid", _lib.SIGMOID)
abs = _unary("abs", _lib.ABS)  # noqa: A001 - the contract's name
sign = _unary("sign", _lib.SIGN)
relu = _unary("relu", _lib.RELU)


def clip(a: CudaArray, lo: Any, hi: Any) -> CudaArray:
    """np.clip(a, lo, hi); bounds are scalars, None, or arrays (then maximum/minimum)."""
    if type(lo) is CudaArray or type(hi) is CudaArray:
        out = a if lo is None else maximum(a, lo)
        return out if hi is None else minimum(out, hi)
    _cudart.set_device(a.device)
    has_lo, has_hi = lo is not None, hi is not None
    dt = a.dtype
    for bound in (lo, hi):
        if bound is not None:
            dt = np.result_type(dt, scalar_dtype(a.dtype, python_scalar("clip", bound)))
    if dt == BOOL:
        raise DTypeError("clip", "not defined for bool arrays", a)
    if a.dtype != dt:
        a = astype(a, dt)
    out = empty(a.shape, dt, a.device)
    it = None if a.is_contiguous else _lib.pack_iter(a.shape, out.strides, a.strides)
    lo_s = _lib.scalar(python_scalar("clip", lo) if has_lo else 0)
    hi_s = _lib.scalar(python_scalar("clip", hi) if has_hi else 0)
    check(_lib.lib.kd_clip(DTYPE_CODES[dt], out.ptr, a.ptr, lo_s, hi_s, has_lo, has_hi, a.size, it), "clip")
    return out


def where(cond: CudaArray, a: Any, b: Any) -> CudaArray:
    """np.where(cond, a, b) with a, b arrays or scalars."""
    device = same_device("where", cond, a, b)
    if type(cond) is not CudaArray:
        raise DTypeError("where", "condition must be a CudaArray", cond)
    if cond.dtype != BOOL:
        cond = not_equal(cond, 0)
    a_arr, b_arr = type(a) is CudaArray, type(b) is CudaArray
    if a_arr and b_arr:
        dt = np.result_type(a.dtype, b.dtype)
    elif a_arr:
        b = python_scalar("where", b)
        dt = scalar_dtype(a.dtype, b)
    elif b_arr:
        a = python_scalar("where", a)
        dt = scalar_dtype(b.dtype, a)
    else:
        a, b = python_scalar("where", a), python_scalar("where", b)
        dt = np.result_type(type(a), type(b))
        dt = F64 if dt.kind == "f" else (I64 if dt.kind in "iu" else BOOL)
    if a_arr and a.dtype != dt:
        a = astype(a, dt)
    if b_arr and b.dtype != dt:
        b = astype(b, dt)
    shapes = [cond.shape] + [x.shape for x in (a, b) if type(x) is CudaArray]
    shape = broadcast_shapes("where", *shapes)
    out = empty(shape, dt, device)
    zeros = (0,) * len(shape)
    it = _lib.pack_iter(
        shape,
        out.strides,
        broadcast_strides(cond, shape),
        broadcast_strides(a, shape) if a_arr else zeros,
        broadcast_strides(b, shape) if b_arr else zeros,
    )
    sa = _lib.scalar(0 if a_arr else a)
    sb = _lib.scalar(0 if b_arr else b)
    check(
        _lib.lib.kd_where(
            DTYPE_CODES[dt],
            out.ptr,
            cond.ptr,
            a.ptr if a_arr else None,
            b.ptr if b_arr else None,
            sa,
            sb,
            out.size,
            it,
        ),
        "where",
    )
    return out
