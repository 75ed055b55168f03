"""ctypes bindings to cuDNN 9's legacy API: the one module that loads libcudnn and declares its functions.

Besides the table it holds the few helpers that need ctypes objects (descriptors, algorithm perf arrays);
the kernels in conv.py and batchnorm.py pass plain ints. Loading happens at first use.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_char_p, c_double, c_float, c_int, c_size_t, c_void_p

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError

from ._libsearch import candidates

LIBRARY = "cuDNN"
NAMES = ["libcudnn.so.9", "libcudnn.so"]

# cudnnDataType_t, cudnnTensorFormat_t, cudnnConvolutionMode_t, cudnnMathType_t, cudnnBatchNormMode_t
DATA_FLOAT, DATA_DOUBLE = 0, 1
TENSOR_NCHW = 0
CROSS_CORRELATION = 1
DEFAULT_MATH, FMA_MATH = 0, 3
BATCHNORM_SPATIAL = 1
FWD_IMPLICIT_PRECOMP_GEMM = 1  # the one algorithm cudnnConvolutionBiasActivationForward takes with IDENTITY
ACTIVATION_IDENTITY = 5
STATUS_SUCCESS = 0


class AlgoPerf(Structure):
    """cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t: the three share this layout."""

    _fields_ = [("algo", c_int), ("status", c_int), ("time", c_float), ("memory", c_size_t),
                ("determinism", c_int), ("mathType", c_int), ("reserved", c_int * 3)]


_p = c_void_p
_out_p = POINTER(c_void_p)
_ALGOS = 8  # >= CUDNN_CONVOLUTION_{FWD,BWD_DATA,BWD_FILTER}_ALGO_COUNT (8, 6, 7)
# For each convolution direction (a, b, conv, c): fwd (x, w, conv, y), data (w, dy, conv, dx),
# filter (x, dy, conv, dw); c is the output.
_DIRECTIONS = {"forward": ("Forward", "ConvolutionForward"),
               "backward_data": ("BackwardData", "ConvolutionBackwardData"),
               "backward_filter": ("BackwardFilter", "ConvolutionBackwardFilter")}
_FUNCTIONS: dict[str, tuple[object, list[object]]] = {
    "cudnnGetVersion": (c_size_t, []),
    "cudnnGetErrorString": (c_char_p, [c_int]),
    "cudnnCreate": (c_int, [_out_p]),
    "cudnnDestroy": (c_int, [_p]),
    "cudnnCreateTensorDescriptor": (c_int, [_out_p]),
    "cudnnSetTensor4dDescriptor": (c_int, [_p, c_int, c_int, c_int, c_int, c_int, c_int]),
    "cudnnDestroyTensorDescriptor": (c_int, [_p]),
    "cudnnCreateFilterDescriptor": (c_int, [_out_p]),
    "cudnnSetFilter4dDescriptor": (c_int, [_p, c_int, c_int, c_int, c_int, c_int, c_int]),
    "cudnnCreateConvolutionDescriptor": (c_int, [_out_p]),
    # desc, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w, mode, compute type
    "cudnnSetConvolution2dDescriptor": (c_int, [_p, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int]),
    "cudnnSetConvolutionGroupCount": (c_int, [_p, c_int]),
    "cudnnSetConvolutionMathType": (c_int, [_p, c_int]),
    # handle, alpha, aDesc, A, beta, cDesc, C
    "cudnnAddTensor": (c_int, [_p, _p, _p, _p, _p, _p, _p]),
    "cudnnSetTensor": (c_int, [_p, _p, _p, _p]),
    "cudnnCreateActivationDescriptor": (c_int, [_out_p]),
    # desc, mode, NaN propagation, coefficient
    "cudnnSetActivationDescriptor": (c_int, [_p, c_int, c_int, c_double]),
    # handle, alpha1, xDesc, x, wDesc, w, convDesc, algo, workspace, bytes, alpha2, zDesc, z, biasDesc, bias,
    # activationDesc, yDesc, y: y = act(alpha1 * conv(x, w) + alpha2 * z + bias)
    "cudnnConvolutionBiasActivationForward": (c_int, [_p, _p, _p, _p, _p, _p, _p, c_int, _p, c_size_t, _p, _p,
                                                      _p, _p, _p, _p, _p, _p]),
    "cudnnDeriveBNTensorDescriptor": (c_int, [_p, _p, c_int]),
    # handle, mode, alpha, beta, xDesc, x, yDesc, y, bnDesc, scale, bias, avg factor, running mean,
    # running var, epsilon, save mean, save inv variance
    "cudnnBatchNormalizationForwardTraining": (c_int, [_p, c_int, _p, _p, _p, _p, _p, _p, _p, _p, _p,
                                                       c_double, _p, _p, c_double, _p, _p]),
    # handle, mode, alpha/beta data, alpha/beta param, xDesc, x, dyDesc, dy, dxDesc, dx, bnDesc, scale,
    # dScale, dBias, epsilon, saved mean, saved inv variance
    "cudnnBatchNormalizationBackward": (c_int, [_p, c_int, _p, _p, _p, _p, _p, _p, _p, _p, _p, _p, _p,
                                                _p, _p, _p, c_double, _p, _p]),
}
for _short, _run in _DIRECTIONS.values():
    _FUNCTIONS[f"cudnnGetConvolution{_short}Algorithm_v7"] = (
        c_int, [_p, _p, _p, _p, _p, c_int, POINTER(c_int), POINTER(AlgoPerf)])
    _FUNCTIONS[f"cudnnFindConvolution{_short}AlgorithmEx"] = (
        c_int, [_p, _p, _p, _p, _p, _p, _p, _p, c_int, POINTER(c_int), POINTER(AlgoPerf), _p, c_size_t])
    _FUNCTIONS[f"cudnnGetConvolution{_short}WorkspaceSize"] = (
        c_int, [_p, _p, _p, _p, _p, c_int, POINTER(c_size_t)])
    # handle, alpha, aDesc, a, bDesc, b, convDesc, algo, workspace, bytes, beta, cDesc, c
    _FUNCTIONS[f"cudnn{_run}"] = (c_int, [_p, _p, _p, _p, _p, _p, _p, c_int, _p, c_size_t, _p, _p, _p])
_OPTIONAL = {"cudnnGetLastErrorString": (None, [c_char_p, c_size_t])}  # cuDNN >= 9.0

_SCALAR_KEEP = {DATA_FLOAT: (c_float(1.0), c_float(0.0)), DATA_DOUBLE: (c_double(1.0), c_double(0.0))}
# alpha = 1 and beta = 0 in host memory, as addresses, per cuDNN data type.
ONE_ZERO: dict[int, tuple[int, int]] = {k: (ctypes.addressof(a), ctypes.addressof(b))
                                        for k, (a, b) in _SCALAR_KEEP.items()}

_lib: ctypes.CDLL | None = None
_load_error: str | None = None
_handles: dict[int, int] = {}
_identity: int | None = None


def _load() -> ctypes.CDLL:
    tried = []
    for path in candidates("KEYDNN_CUDNN", NAMES):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for name, (restype, argtypes) in _FUNCTIONS.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        for name, (restype, argtypes) in _OPTIONAL.items():
            if hasattr(lib, name):
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
        return lib
    raise OSError("no loadable cuDNN (set KEYDNN_CUDNN to its path); tried: " + "; ".join(tried))


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
            raise DeviceNotSupportedError("cuDNN", "cuda", _load_error or "")
    return _lib


def check(status: int, op: str) -> None:
    """Raise NativeLibraryError with cuDNN's message (and its last detailed error, where it keeps one)."""
    if status != STATUS_SUCCESS:
        lb = lib()
        msg = (lb.cudnnGetErrorString(status) or b"unknown status").decode()
        if hasattr(lb, "cudnnGetLastErrorString"):
            buf = ctypes.create_string_buffer(1024)
            lb.cudnnGetLastErrorString(buf, len(buf))
            if buf.value:
                msg += ": " + buf.value.decode(errors="replace").strip()
        raise NativeLibraryError(LIBRARY, op, msg, status)


def call(op: str, name: str, *args: object) -> None:
    """Call cuDNN function ``name`` and check its status; ``op`` is the KeyDNN op reported on failure."""
    check(getattr(lib(), name)(*args), f"{op} ({name})")


def _new(op: str, create: str) -> int:
    d = c_void_p()
    call(op, create, ctypes.byref(d))
    return d.value


def handle(device: int) -> int:
    """This device's cuDNN handle, created at first use (the caller has made ``device`` current)."""
    h = _handles.get(device)
    if h is None:
        h = _handles[device] = _new("cudnn handle", "cudnnCreate")
    return h


def version() -> int:
    return int(lib().cudnnGetVersion())


def tensor_4d(op: str, dtype: int, shape: tuple[int, int, int, int]) -> int:
    """A packed NCHW tensor descriptor."""
    d = _new(op, "cudnnCreateTensorDescriptor")
    call(op, "cudnnSetTensor4dDescriptor", d, TENSOR_NCHW, dtype, *shape)
    return d


def filter_4d(op: str, dtype: int, shape: tuple[int, int, int, int]) -> int:
    """A packed KCRS filter descriptor."""
    d = _new(op, "cudnnCreateFilterDescriptor")
    call(op, "cudnnSetFilter4dDescriptor", d, dtype, TENSOR_NCHW, *shape)
    return d


def convolution_2d(op: str, dtype: int, padding: tuple[int, int], stride: tuple[int, int],
                   dilation: tuple[int, int], groups: int, math_type: int) -> int:
    """A cross-correlation descriptor (what deep learning calls convolution) computing in ``dtype``."""
    d = _new(op, "cudnnCreateConvolutionDescriptor")
    call(op, "cudnnSetConvolution2dDescriptor", d, *padding, *stride, *dilation, CROSS_CORRELATION, dtype)
    call(op, "cudnnSetConvolutionGroupCount", d, groups)
    call(op, "cudnnSetConvolutionMathType", d, math_type)
    return d


def identity_activation(op: str) -> int:
    """An activation descriptor for y = x, created once (descriptors are host-side and device-free)."""
    global _identity
    if _identity is None:
        d = _new(op, "cudnnCreateActivationDescriptor")
        call(op, "cudnnSetActivationDescriptor", d, ACTIVATION_IDENTITY, 0, 0.0)
        _identity = d
    return _identity


def batch_norm_param(op: str, x_desc: int, mode: int) -> int:
    """The (1, C, 1, 1) descriptor cuDNN derives for scale, bias, mean and inverse std of ``x_desc``."""
    d = _new(op, "cudnnCreateTensorDescriptor")
    call(op, "cudnnDeriveBNTensorDescriptor", d, x_desc, mode)
    return d


def heuristic_algorithms(op: str, direction: str, h: int, descs: tuple[int, int, int, int]) -> list[int]:
    """cuDNN's ranked guesses (Get*_v7) for a convolution direction, supported ones only."""
    perf, count = (AlgoPerf * _ALGOS)(), c_int()
    name = f"cudnnGetConvolution{_DIRECTIONS[direction][0]}Algorithm_v7"
    call(op, name, h, *descs, _ALGOS, ctypes.byref(count), perf)
    return [p.algo for p in perf[:count.value] if p.status == STATUS_SUCCESS]


def find_algorithms(op: str, direction: str, h: int, descs: tuple[int, int, int, int],
                    ptrs: tuple[int, int, int], workspace: int,
                    workspace_bytes: int) -> list[tuple[int, float, int, int]]:
    """Time every algorithm fitting the workspace on these buffers (Find*Ex), fastest first.

    Returns (algo, ms, workspace bytes, math type): under DEFAULT_MATH one algorithm may appear once with
    tensor-op (TF32) and once with FMA kernels, and the descriptor must then be set to the one chosen.
    """
    perf, count = (AlgoPerf * _ALGOS)(), c_int()
    a, b, conv, c = descs
    name = f"cudnnFindConvolution{_DIRECTIONS[direction][0]}AlgorithmEx"
    call(op, name, h, a, ptrs[0], b, ptrs[1], conv, c, ptrs[2], _ALGOS, ctypes.byref(count), perf,
         workspace or None, workspace_bytes)
    return [(p.algo, p.time, p.memory, p.mathType) for p in perf[:count.value] if p.status == STATUS_SUCCESS]


def workspace_size(op: str, direction: str, h: int, descs: tuple[int, int, int, int],
                   algo: int) -> int | None:
    """Bytes of workspace ``algo`` needs, or None when it does not support this problem."""
    size = c_size_t()
    name = f"cudnnGetConvolution{_DIRECTIONS[direction][0]}WorkspaceSize"
    status = getattr(lib(), name)(h, *descs, algo, ctypes.byref(size))
    return size.value if status == STATUS_SUCCESS else None


def convolve(op: str, direction: str, h: int, dtype: int, descs: tuple[int, int, int, int],
             ptrs: tuple[int, int, int], algo: int, workspace: int, workspace_bytes: int) -> None:
    """c = conv_direction(a, b) with alpha 1, beta 0: the one call per kernel launch."""
    one, zero = ONE_ZERO[dtype]
    a, b, conv, c = descs
    call(op, f"cudnn{_DIRECTIONS[direction][1]}", h, one, a, ptrs[0], b, ptrs[1], conv, algo,
         workspace or None, workspace_bytes, zero, c, ptrs[2])
