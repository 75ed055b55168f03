"""ctypes bindings to KeyDNN's own CUDA library (keydnn/_native/libkeydnn_cuda.so, or $KEYDNN_NATIVE_DIR).

Every exported function is declared once in ``_SIGNATURES``; ``check`` turns a non-zero status into
NativeLibraryError('keydnn_cuda', op, message, code) with the library's own message. Iteration spaces
(``kd_iter``) are packed into immutable bytes with one precompiled ``struct`` call, which is cheaper than
filling a ctypes Structure and safe across threads.

The hottest entry points (binary, binary_scalar, unary, cast, fill, gemm) take one argument record instead of
separate arguments: ``lib.kd_binary(pack_binary(op, dtype, out, a, b, n), it)``. ctypes converts each
declared argument into a temporary object (about 0.15 us apiece), but hands a bytes object or None to a
pointer parameter as it is, so a packed call costs one ``struct`` call plus a bare call. ``_load`` checks
every record's size against the library's ``kd_sizeof``. The library is loaded as a ``PyDLL``: none of its
functions waits for the device, so there is no reason to release and re-take the GIL around each launch.
"""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

from keydnn.domain.errors import NativeLibraryError, ShapeError
from keydnn.infrastructure.backends import _libcheck

LIBRARY = "keydnn_cuda"
MAX_DIMS = 8
MAX_OPERANDS = 4
ABI_VERSION = 3

# Codes mirrored from native/include/keydnn_cuda.h.
ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, RELU_BACKWARD, EQ, NE, LT, LE, GT, GE = range(14)
NEG, EXP, LOG, SQRT, TANH, SIGMOID, ABS, SIGN, RELU = range(9)
SUM, MAX, MIN, ARGMAX = range(4)
STATUS_NAMES = {1: "invalid argument", 2: "unsupported dtype", 3: "CUDA error"}


class Scalar(ctypes.Structure):
    """kd_scalar: a scalar operand, read as .f by float kernels and .i by integer ones."""

    _fields_ = [("f", ctypes.c_double), ("i", ctypes.c_int64)]


class Pool2d(ctypes.Structure):
    """kd_pool2d: the geometry of a 2-D pooling call."""

    _fields_ = [
        (name, ctypes.c_int64)
        for name in ("n", "c", "h", "w", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw")
    ]


_ITER = struct.Struct(f"<ii{MAX_DIMS}q{MAX_OPERANDS * MAX_DIMS}q")

# The kd_*_args records of keydnn_cuda.h in native layout ("@": C alignment; every record ends on an
# 8-byte field, so there is no trailing padding to add). kd_scalar is (double f, int64 i).
_RECORDS = {
    "kd_binary_args": struct.Struct("@iiPPPq"),  # op, dtype, out, a, b, n
    "kd_binary_scalar_args": struct.Struct("@iiPPdqiiq"),  # op, dtype, out, a, s.f, s.i, scalar_left, 0, n
    "kd_unary_args": struct.Struct("@iiPPq"),  # op, dtype, out, a, n
    "kd_cast_args": struct.Struct("@iiPPq"),  # out_dtype, in_dtype, out, a, n
    "kd_fill_args": struct.Struct("@iiPdqq"),  # dtype, 0, out, value.f, value.i, n
    # handle, alpha, beta, a, b, c, stride_a, stride_b, stride_c,
    # transa, transb, m, n, k, lda, ldb, ldc, dtype, compute, batch, algo
    "kd_gemm_args": struct.Struct("@PPPPPPqqq12i"),
}
pack_binary = _RECORDS["kd_binary_args"].pack
pack_binary_scalar = _RECORDS["kd_binary_scalar_args"].pack
pack_unary = _RECORDS["kd_unary_args"].pack
pack_cast = _RECORDS["kd_cast_args"].pack
pack_fill = _RECORDS["kd_fill_args"].pack
pack_gemm = _RECORDS["kd_gemm_args"].pack
_ZEROS = (0,) * MAX_DIMS


def pack_iter(shape: tuple[int, ...], *strides: tuple[int, ...]) -> bytes:
    """A kd_iter over ``shape`` with one stride tuple per operand (output first), as bytes for the C side."""
    nd = len(shape)
    if nd > MAX_DIMS:
        shape, strides = _merge_dims(shape, strides)
        nd = len(shape)
    pad = _ZEROS[nd:]
    values = [*shape, *pad]
    for s in strides:
        values.extend(s)
        values.extend(pad)
    for _ in range(MAX_OPERANDS - len(strides)):
        values.extend(_ZEROS)
    return _ITER.pack(nd, len(strides), *values)


def _merge_dims(shape: tuple[int, ...], strides: tuple[tuple[int, ...], ...]):
    """Collapse dims every operand walks contiguously so a >8-d iteration still fits (as the C side does)."""
    keep = [d for d, n in enumerate(shape) if n != 1] or [0]
    out_shape = [shape[keep[0]]]
    out_strides = [[s[keep[0]]] for s in strides]
    for d in keep[1:]:
        if all(os_[-1] == s[d] * shape[d] for os_, s in zip(out_strides, strides, strict=True)):
            out_shape[-1] *= shape[d]
            for os_, s in zip(out_strides, strides, strict=True):
                os_[-1] = s[d]
        else:
            out_shape.append(shape[d])
            for os_, s in zip(out_strides, strides, strict=True):
                os_.append(s[d])
    if len(out_shape) > MAX_DIMS:
        raise ShapeError(
            "cuda", f"cannot iterate {len(shape)}-d operands with strides {strides} in {MAX_DIMS} dims"
        )
    return tuple(out_shape), tuple(tuple(s) for s in out_strides)


_c = ctypes
_P = _c.c_void_p
_I64 = _c.c_int64
_INT = _c.c_int
_D = _c.c_double
_ITERP = _c.c_char_p  # packed kd_iter bytes, or None for "all contiguous"
_PP = _c.POINTER(_c.c_void_p)
_I64P = _c.POINTER(_c.c_int64)

_SIGNATURES: dict[str, tuple] = {
    "kd_last_error": (_c.c_char_p, []),
    "kd_abi_version": (_INT, []),
    "kd_sizeof": (_I64, [_c.c_char_p]),
    "kd_set_stream": (_INT, [_P]),
    "kd_get_stream": (_P, []),
    # packed: (record bytes, kd_iter bytes or None), passed undeclared (argtypes None) so nothing converts
    "kd_binary": (_INT, None),
    "kd_binary_scalar": (_INT, None),
    "kd_unary": (_INT, None),
    "kd_cast": (_INT, None),
    "kd_fill": (_INT, None),
    "kd_gemm": (_INT, None),  # returns a cuBLAS status
    "kd_blas_bind": (_INT, [_P, _P]),
    "kd_clip": (_INT, [_INT, _P, _P, Scalar, Scalar, _INT, _INT, _I64, _ITERP]),
    "kd_where": (_INT, [_INT, _P, _P, _P, _P, Scalar, Scalar, _I64, _ITERP]),
    "kd_arange": (_INT, [_INT, _P, Scalar, Scalar, _I64]),
    "kd_reduce_workspace": (_I64, [_INT, _INT, _I64, _I64, _I64]),
    "kd_reduce": (_INT, [_INT, _INT, _P, _P, _I64, _I64, _I64, _P, _I64]),
    "kd_gather": (_INT, [_INT, _P, _P, _P, _I64, _ITERP]),
    "kd_scatter": (_INT, [_INT, _P, _P, _P, _I64, _ITERP, _INT]),
    "kd_index_offsets": (_INT, [_P, _P, _I64, _I64, _I64, _I64, _I64, _ITERP, _P, _I64]),
    "kd_uniform": (_INT, [_INT, _P, _I64, _D, _D, _c.c_uint64]),
    "kd_normal": (_INT, [_INT, _P, _I64, _D, _D, _c.c_uint64]),
    "kd_dropout_mask": (_INT, [_INT, _P, _I64, _D, _c.c_uint64]),
    "kd_softmax": (_INT, [_INT, _P, _P, _I64, _I64, _I64, _INT]),
    "kd_softmax_backward": (_INT, [_INT, _P, _P, _P, _I64, _I64, _I64, _INT]),
    "kd_batch_norm_running_update": (_INT, [_INT, _P, _P, _P, _P, _I64, ctypes.c_double, ctypes.c_double,
                                            ctypes.c_double]),
    # dtype, cuBLAS handle, compute type, gx, h0, w, wn, T, N, H, reverse, out, zrs, ns, es, gh, gn
    "kd_gru_seed_forward": (_INT, [_INT, _P, _INT, _P, _P, _P, _P, _I64, _I64, _I64, _INT] + [_P] * 6),
    # dtype, handle, compute, g, h0, out, zrs, ns, w, wn, T, N, H, reverse, dgx, dh0, dz, drh, ca, cb
    "kd_gru_seed_backward": (_INT, [_INT, _P, _INT] + [_P] * 7 + [_I64, _I64, _I64, _INT] + [_P] * 6),
    "kd_softmax_xent_forward": (_INT, [_INT, _P, _P, _P, _P, _I64, _I64, _P, _I64]),
    "kd_softmax_xent_backward": (_INT, [_INT, _P, _P, _P, _P, _I64, _I64]),
    "kd_sgd_step": (_INT, [_INT, _I64, _PP, _PP, _PP, _I64P, _D, _D, _D, _INT, _D]),
    "kd_adam_step": (_INT, [_INT, _I64, _PP, _PP, _PP, _PP, _I64P, _D, _D, _D, _D, _D, _I64, _INT, _P]),
    "kd_adam_scalars": (_INT, [_INT, _D, _D, _D, _I64, _P]),
    "kd_max_pool2d_forward": (_INT, [_INT, _P, _P, _P, _c.POINTER(Pool2d)]),
    "kd_max_pool2d_backward": (_INT, [_INT, _P, _P, _P, _c.POINTER(Pool2d)]),
    "kd_avg_pool2d_forward": (_INT, [_INT, _P, _P, _c.POINTER(Pool2d)]),
    "kd_avg_pool2d_backward": (_INT, [_INT, _P, _P, _c.POINTER(Pool2d)]),
    "kd_layer_norm_forward": (_INT, [_INT, _P, _P, _P, _P, _P, _P, _I64, _I64, _D]),
    "kd_layer_norm_backward_workspace": (_I64, [_INT, _I64, _I64]),
    "kd_layer_norm_backward": (_INT, [_INT, _P, _P, _P, _P, _P, _P, _P, _P, _I64, _I64, _P, _I64]),
}


def library_path() -> Path:
    env = os.environ.get("KEYDNN_NATIVE_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "_native"
    return base / "libkeydnn_cuda.so"


class _Library:
    """The loaded library; attributes are the declared C functions."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


def _load() -> tuple[_Library | None, str]:
    path = library_path()
    if not path.exists():
        return None, f"{path} not built (run: python native/build.py --cuda-only)"
    damaged = _libcheck.problem(path, "cuda")  # before dlopen: a truncated library would crash the process
    if damaged:
        return None, damaged
    try:
        lib = _Library(ctypes.PyDLL(str(path)))
    except (OSError, AttributeError) as exc:
        return None, f"cannot load {path}: {exc}"
    version = lib.kd_abi_version()
    if version != ABI_VERSION:
        return None, f"{path} has ABI version {version}, expected {ABI_VERSION}: rebuild it"
    for name, record in _RECORDS.items():
        size = lib.kd_sizeof(name.encode())
        if size != record.size:
            return None, f"{path}: {name} is {size} bytes, KeyDNN packs {record.size}: rebuild it"
    return lib, ""


lib, load_error = _load()


def check(status: int, op: str) -> None:
    """Raise NativeLibraryError('keydnn_cuda', op, message, status) for a failed call."""
    if status:
        message = lib.kd_last_error().decode(errors="replace") if lib is not None else load_error
        raise NativeLibraryError(LIBRARY, op, message or STATUS_NAMES.get(status, "failure"), status)


_SCALARS: dict[tuple[type, float | int | bool], Scalar] = {}
_PARTS: dict[tuple[type, float | int | bool], tuple[float, int]] = {}


def scalar_parts(value: float | int | bool) -> tuple[float, int]:
    """(f, i) of a kd_scalar holding ``value``, for the packed records (memoised)."""
    key = (type(value), value)
    parts = _PARTS.get(key)
    if parts is None:
        if isinstance(value, float):
            parts = (value, int(value) if value == value and abs(value) < 9.2e18 else 0)
        else:
            iv = int(value)
            parts = (float(iv), iv)
        if len(_PARTS) < 1024 and value == value:
            _PARTS[key] = parts
    return parts


def scalar(value: float | int | bool) -> Scalar:
    """A kd_scalar holding ``value`` for both float and integer kernels (memoised: ctypes passes it by
    value, so a cached instance is never written through)."""
    key = (type(value), value)
    cached = _SCALARS.get(key)
    if cached is not None:
        return cached
    s = Scalar(*scalar_parts(value))
    if len(_SCALARS) < 1024 and value == value:
        _SCALARS[key] = s
    return s


def pointer_array(pointers: list[int]) -> ctypes.Array:
    """A C array of device pointers (void *const *) for the multi-tensor kernels."""
    return (ctypes.c_void_p * len(pointers))(*pointers)


def int64_array(values: list[int]) -> ctypes.Array:
    return (ctypes.c_int64 * len(values))(*values)
