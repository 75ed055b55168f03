"""ctypes bindings to cuBLAS: the one module that loads libcublas and declares the functions KeyDNN calls.

The library is loaded at first use; a missing one raises DeviceNotSupportedError naming every path tried.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_char_p, c_int, c_longlong, c_void_p
from pathlib import Path

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError

from ._libsearch import candidates

LIBRARY = "cuBLAS"
NAMES = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"]

# cublasOperation_t, cublasMath_t, cudaDataType_t, cublasComputeType_t, cublasGemmAlgo_t (cublas_api.h,
# library_types.h).
OP_N, OP_T = 0, 1
DEFAULT_MATH, PEDANTIC_MATH, TF32_TENSOR_OP_MATH = 0, 2, 3
CUDA_R_32F, CUDA_R_64F = 0, 1
COMPUTE_32F, COMPUTE_64F, COMPUTE_32F_FAST_TF32 = 68, 70, 77
GEMM_DEFAULT = -1

_handle_p = POINTER(c_void_p)
_FUNCTIONS: dict[str, tuple[object, list[object]]] = {
    "cublasCreate_v2": (c_int, [_handle_p]),
    "cublasDestroy_v2": (c_int, [c_void_p]),
    "cublasSetStream_v2": (c_int, [c_void_p, c_void_p]),
    "cublasSetWorkspace_v2": (c_int, [c_void_p, c_void_p, ctypes.c_size_t]),
    "cublasSetMathMode": (c_int, [c_void_p, c_int]),
    "cublasGetProperty": (c_int, [c_int, POINTER(c_int)]),
    "cublasGetStatusString": (c_char_p, [c_int]),
    # The two GEMMs run through KeyDNN's library (kd_gemm, one packed call; see blas.py), which takes their
    # addresses; they are declared here too, with the ABI native/cuda/blas.cu assumes.
    # handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
    # computeType, algo
    "cublasGemmEx": (c_int, [c_void_p, c_int, c_int, c_int, c_int, c_int, c_void_p, c_void_p, c_int, c_int,
                             c_void_p, c_int, c_int, c_void_p, c_void_p, c_int, c_int, c_int, c_int]),
    # as GemmEx, with a long long element stride after each of lda, ldb, ldc and batchCount before computeType
    "cublasGemmStridedBatchedEx": (c_int, [c_void_p, c_int, c_int, c_int, c_int, c_int, c_void_p,
                                           c_void_p, c_int, c_int, c_longlong,
                                           c_void_p, c_int, c_int, c_longlong, c_void_p,
                                           c_void_p, c_int, c_int, c_longlong, c_int, c_int, c_int]),
}

# alpha = 1 and beta = 0 in host memory (the handles keep CUBLAS_POINTER_MODE_HOST), as addresses.
_SCALAR_KEEP = {CUDA_R_32F: (ctypes.c_float(1.0), ctypes.c_float(0.0)),
                CUDA_R_64F: (ctypes.c_double(1.0), ctypes.c_double(0.0))}
ONE_ZERO: dict[int, tuple[int, int]] = {k: (ctypes.addressof(a), ctypes.addressof(b))
                                        for k, (a, b) in _SCALAR_KEEP.items()}

_lib: ctypes.CDLL | None = None
_load_error: str | None = None


def _open(path: str) -> ctypes.CDLL:
    # libcublas needs libcublasLt from its own folder, which the loader's path may not include.
    if "/" in path:
        for lt in sorted(Path(path).parent.glob("libcublasLt.so*"), reverse=True):
            try:
                ctypes.CDLL(str(lt), mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
    return ctypes.CDLL(path)


def _load() -> ctypes.CDLL:
    tried = []
    for path in candidates("KEYDNN_CUBLAS", NAMES):
        try:
            lib = _open(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for name, (restype, argtypes) in _FUNCTIONS.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        return lib
    raise OSError("no loadable cuBLAS (set KEYDNN_CUBLAS to its path); tried: " + "; ".join(tried))


def lib() -> ctypes.CDLL:
    """The loaded library, its functions declared; raises DeviceNotSupportedError if none can be loaded."""
    global _lib, _load_error
    if _lib is None:
        if _load_error is None:
            try:
                _lib = _load()
            except (OSError, AttributeError) as e:
                _load_error = str(e)
        if _lib is None:
            raise DeviceNotSupportedError("cuBLAS", "cuda", _load_error or "")
    return _lib


def check(status: int, op: str) -> None:
    """Raise NativeLibraryError carrying cuBLAS's own message when ``status`` is not CUBLAS_STATUS_SUCCESS."""
    if status != 0:
        msg = lib().cublasGetStatusString(status)
        raise NativeLibraryError(LIBRARY, op, msg.decode() if msg else "unknown status", status)


def call(op: str, name: str, *args: object) -> None:
    """Call cuBLAS function ``name`` and check its status; ``op`` is the KeyDNN op reported on failure."""
    check(getattr(lib(), name)(*args), f"{op} ({name})")


def address(fn: object) -> int:
    """The address of a loaded C function (for KeyDNN's library to call it directly)."""
    return ctypes.cast(fn, c_void_p).value or 0


def create_handle() -> int:
    """A new cuBLAS handle on the current device (cudaSetDevice first)."""
    h = c_void_p()
    call("cublas handle", "cublasCreate_v2", ctypes.byref(h))
    return h.value


def version() -> str:
    """'major.minor.patch' of the loaded library (libraryPropertyType 0, 1, 2)."""
    parts = []
    for prop in range(3):
        v = c_int()
        call("cublas version", "cublasGetProperty", prop, ctypes.byref(v))
        parts.append(str(v.value))
    return ".".join(parts)
