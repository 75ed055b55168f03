"""The one ctypes binding of libkeydnn_cpu: finds and loads the library, declares every C function once, and
turns non-zero status codes into NativeLibraryError. Nothing else in KeyDNN touches this library directly.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from keydnn.domain.errors import NativeLibraryError
from keydnn.infrastructure.backends import _libcheck
from keydnn.infrastructure.backends.native_cpu import _openblas_lib

LIBRARY = "libkeydnn_cpu"
_FILE = "libkeydnn_cpu.so"
_DEFAULT_DIR = Path(__file__).resolve().parents[3] / "_native"


class ConvGeom(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("n", "c", "h", "w", "o", "groups", "kh", "kw",
                                                    "sh", "sw", "ph", "pw", "dh", "dw", "oh", "ow")]


class PoolGeom(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in
                ("planes", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow")]


_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_CONV = ctypes.POINTER(ConvGeom)
_POOL = ctypes.POINTER(PoolGeom)

# Every typed entry point, without its _f32/_f64 suffix: argument types (restype is always the int status).
_TYPED: dict[str, list[Any]] = {
    "keydnn_conv2d_forward": [_P, _P, _P, _CONV, _P],
    "keydnn_conv2d_backward_input": [_P, _P, _CONV, _P],
    "keydnn_conv2d_backward_weight": [_P, _P, _CONV, _P],
    "keydnn_max_pool2d_forward": [_P, _POOL, _P, _P],
    "keydnn_max_pool2d_backward": [_P, _P, _I, _I, _I, _P],
    "keydnn_avg_pool2d_forward": [_P, _POOL, _P],
    "keydnn_avg_pool2d_backward": [_P, _POOL, _P],
    "keydnn_batch_norm_forward": [_P, _P, _P, _I, _I, _I, _D, _P, _P, _P],
    "keydnn_batch_norm_backward": [_P, _P, _P, _P, _P, _I, _I, _I, _P, _P, _P],
    "keydnn_layer_norm_forward": [_P, _P, _P, _I, _I, _D, _P, _P, _P],
    "keydnn_layer_norm_backward": [_P, _P, _P, _P, _P, _I, _I, _P, _P, _P],
    "keydnn_lstm_gates_forward": [_P, _P, _I, _I, _P, _P, _P, _P],
    "keydnn_lstm_gates_backward": [_P, _P, _P, _P, _P, _I, _I, _P, _P],
    "keydnn_lstm_sequence_forward": [_P, _P, _P, _P, _I, _I, _I, ctypes.c_int, _P, _P, _P, _P],
    "keydnn_lstm_sequence_backward": [_P, _P, _P, _P, _P, _P, _I, _I, _I, ctypes.c_int, _P, _P, _P, _P],
}
_UNTYPED: dict[str, tuple[Any, list[Any]]] = {
    "keydnn_cpu_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "keydnn_cpu_max_threads": (ctypes.c_int, []),
    "keydnn_cpu_bind_gemm": (None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]),
    "keydnn_cpu_blas_calls": (ctypes.c_uint64, []),
    "keydnn_cpu_blas_threads": (None, [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t,
                                       ctypes.c_void_p, ctypes.c_int]),
}
SUFFIX = {np.dtype(np.float32): "_f32", np.dtype(np.float64): "_f64"}


class _Loaded:
    lib: Any = None
    path: Path | None = None
    gemm: str | None = None  # the OpenBLAS bound for the LSTM sequence's GEMMs


def library_dir() -> Path:
    """``$KEYDNN_NATIVE_DIR`` if set, else keydnn/_native (where native/build.py puts the library)."""
    env = os.environ.get("KEYDNN_NATIVE_DIR")
    return Path(env) if env else _DEFAULT_DIR


def _open_with_passive_openmp(path: Path) -> Any:
    """dlopen the library; when NumPy's BLAS keeps a thread pool of its own (an OpenBLAS without the threads
    callback, MKL, ``KEYDNN_BLAS_THREADS=openblas``), with OMP_WAIT_POLICY=PASSIVE seen by the OpenMP
    runtime's constructor, then restore the variable: two pools spinning fight for the cores between kernels
    (a LeNet step measured 8x slower on 2 cores). With one pool (the usual case, see _openblas_lib) libgomp
    keeps its default short spin, the policy PyTorch gets alone: a passive runtime loaded first would serve
    PyTorch too, and slow its many small parallel regions. A user's own OMP_WAIT_POLICY wins."""
    if _openblas_lib.will_serve():
        return ctypes.CDLL(str(path))
    previous = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return ctypes.CDLL(str(path))
    finally:
        if previous is None:
            os.environ.pop("OMP_WAIT_POLICY", None)


def load() -> Any:
    """The loaded library with every function declared; NativeLibraryError when it is missing, damaged
    (checked by _libcheck before dlopen: a truncated file would crash the process) or stale."""
    if _Loaded.lib is not None:
        return _Loaded.lib
    path = library_dir() / _FILE
    if not path.exists():
        raise NativeLibraryError(LIBRARY, "load", f"{path} not found; build it with `nox -s build_native` or "
                                 "`python native/build.py --cpu-only`")
    damaged = _libcheck.problem(path, "cpu")
    if damaged:
        raise NativeLibraryError(LIBRARY, "load", damaged)
    try:
        lib = _open_with_passive_openmp(path)
        for name, argtypes in _TYPED.items():
            for suffix in SUFFIX.values():
                fn = getattr(lib, name + suffix)
                fn.argtypes, fn.restype = argtypes, ctypes.c_int
        for name, (restype, argtypes) in _UNTYPED.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, restype
    except (OSError, AttributeError) as exc:
        raise NativeLibraryError(LIBRARY, "load", f"{path}: {exc}") from exc
    _Loaded.lib, _Loaded.path = lib, path
    _openblas_lib.install(lib.keydnn_cpu_blas_threads)  # one thread pool for NumPy's BLAS and these kernels
    gemm = _openblas_lib.gemm_entry_points()  # NumPy's own GEMM, for the LSTM sequence's per-step products
    if gemm is not None and gemm[0] and gemm[1]:
        lib.keydnn_cpu_bind_gemm(gemm[0], gemm[1], int(gemm[2]))
        _Loaded.gemm = gemm[3]
    return lib


def gemm_library() -> str | None:
    """The OpenBLAS whose cblas_?gemm the native LSTM sequence calls, or None (it then runs the composite)."""
    load()
    return _Loaded.gemm


_address = ctypes.addressof
_char_at = ctypes.c_char.from_buffer


def _arg(value: Any) -> Any:
    if type(value) is np.ndarray:
        # A kernel walks memory as dense rows: a strided view would be read out of bounds.
        if not value.flags.c_contiguous:
            raise ValueError("native kernels take C-contiguous arrays")
        try:  # the address through the buffer protocol: a third of ``value.ctypes.data``'s cost
            return _address(_char_at(value))
        except (TypeError, ValueError):  # read-only or empty: the slower way works for both
            return value.ctypes.data
    if isinstance(value, np.ndarray):  # a subclass
        return _arg(np.asarray(value))
    if isinstance(value, (ConvGeom, PoolGeom)):
        return ctypes.byref(value)
    return value


_functions: dict[tuple[str, Any], Any] = {}  # (name, dtype) -> the typed entry point (looked up once)


def call(op: str, name: str, dtype: np.dtype, *args: Any) -> None:
    """Call ``name`` + the dtype's suffix with arrays passed as pointers; raise on a non-zero status."""
    fn = _functions.get((name, dtype))
    if fn is None:
        fn = _functions[(name, dtype)] = getattr(load(), name + SUFFIX[np.dtype(dtype)])
    status = fn(*[_arg(a) for a in args])
    if status != 0:
        message = load().keydnn_cpu_status_string(status).decode()
        raise NativeLibraryError(LIBRARY, op, message, status)


def conv_geom(x_shape: tuple, w_shape: tuple, groups: int, stride: tuple, padding: tuple, dilation: tuple,
              out_hw: tuple) -> ConvGeom:
    return ConvGeom(*x_shape, w_shape[0], groups, *w_shape[2:], *stride, *padding, *dilation, *out_hw)


def pool_geom(planes: int, h: int, w: int, kernel: tuple, stride: tuple, padding: tuple,
              out_hw: tuple) -> PoolGeom:
    return PoolGeom(planes, h, w, *kernel, *stride, *padding, *out_hw)


def info() -> dict[str, Any]:
    """Where the library loaded from, how it was built (build_info.json) and OpenMP's thread count."""
    lib = load()
    build_path = _Loaded.path.parent / "build_info.json"
    build = json.loads(build_path.read_text()).get("cpu", {}) if build_path.exists() else {}
    return {"library": LIBRARY, "path": str(_Loaded.path), "compiler": build.get("compiler", "unknown"),
            "flags": build.get("flags", []), "openmp": build.get("openmp", False),
            "omp_max_threads": int(lib.keydnn_cpu_max_threads()),
            "blas_on_openmp_team": _openblas_lib.blas_threads()}
