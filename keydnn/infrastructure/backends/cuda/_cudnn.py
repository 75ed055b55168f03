"""ctypes bindings to cuDNN 9: the one module that loads libcudnn and declares its functions.

The legacy API serves batch norm and half of the convolution candidates; the other half are execution plans of
the backend (graph) API, finalized once, whose calls cost about half the host time of a legacy call (cuDNN 9
builds a plan inside every legacy call); the RNN API is bound in _cudnn_rnn.py. Besides the table it holds the
helpers that
need ctypes objects (descriptors, attribute arrays, algorithm perf arrays); the kernels in conv.py and
batchnorm.py pass plain ints. Loading happens at first use.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_void_p

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError

from . import _cudart
from ._libsearch import candidates
from .storage import c_strides

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
    "cudnnSetStream": (c_int, [_p, _p]),
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
_OPTIONAL = {
    "cudnnGetLastErrorString": (None, [c_char_p, c_size_t]),  # cuDNN >= 9.0
    # The backend (graph) API: descriptor, attribute name, attribute type, element count, elements.
    "cudnnBackendCreateDescriptor": (c_int, [c_int, _out_p]),
    "cudnnBackendDestroyDescriptor": (c_int, [_p]),
    "cudnnBackendSetAttribute": (c_int, [_p, c_int, c_int, c_int64, _p]),
    "cudnnBackendGetAttribute": (c_int, [_p, c_int, c_int, c_int64, POINTER(c_int64), _p]),
    "cudnnBackendFinalize": (c_int, [_p]),
    "cudnnBackendExecute": (c_int, [_p, _p, _p]),
}

_SCALAR_KEEP = {DATA_FLOAT: (c_float(1.0), c_float(0.0)), DATA_DOUBLE: (c_double(1.0), c_double(0.0))}
# alpha = 1 and beta = 0 in host memory, as addresses, per cuDNN data type.
ONE_ZERO: dict[int, tuple[int, int]] = {k: (ctypes.addressof(a), ctypes.addressof(b))
                                        for k, (a, b) in _SCALAR_KEEP.items()}

_lib: ctypes.CDLL | None = None
_lib_path: str | None = None
_load_error: str | None = None
_handles: dict[int, int] = {}
_identity: int | None = None


def _load() -> ctypes.CDLL:
    global _lib_path
    tried = []
    for path in candidates("KEYDNN_CUDNN", NAMES):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        _lib_path = path
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
        if _cudart.stream:
            call("cudnn handle", "cudnnSetStream", h, _cudart.stream)
    return h


def set_stream(stream: int, device: int) -> None:
    """Point ``device``'s cuDNN handle at ``stream`` of that device (graphs.use_stream; a handle created
    later follows _cudart.stream)."""
    h = _handles.get(device)
    if h is not None:
        call("set_stream", "cudnnSetStream", h, stream or None)


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


# ---- the backend (graph) API ----------------------------------------------------------------------------
# Values from cudnn_graph.h (cuDNN 9); tests/cuda/test_cudnn_graph.py checks them against the installed header.
BACKEND_CONVOLUTION_DESCRIPTOR, BACKEND_ENGINE_DESCRIPTOR, BACKEND_ENGINECFG_DESCRIPTOR = 1, 2, 3
BACKEND_ENGINEHEUR_DESCRIPTOR, BACKEND_EXECUTION_PLAN_DESCRIPTOR = 4, 5
BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR = 10
BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR = 11
BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR = 12
BACKEND_OPERATIONGRAPH_DESCRIPTOR, BACKEND_VARIANT_PACK_DESCRIPTOR, BACKEND_TENSOR_DESCRIPTOR = 15, 16, 17
TYPE_HANDLE, TYPE_DATA_TYPE, TYPE_INT64, TYPE_FLOAT, TYPE_DOUBLE, TYPE_VOID_PTR = 0, 1, 3, 4, 5, 6
TYPE_CONVOLUTION_MODE, TYPE_HEUR_MODE, TYPE_NUMERICAL_NOTE, TYPE_BACKEND_DESCRIPTOR = 7, 8, 11, 15
ATTR_CONVOLUTION_COMP_TYPE, ATTR_CONVOLUTION_CONV_MODE, ATTR_CONVOLUTION_DILATIONS = 100, 101, 102
ATTR_CONVOLUTION_FILTER_STRIDES, ATTR_CONVOLUTION_POST_PADDINGS = 103, 104
ATTR_CONVOLUTION_PRE_PADDINGS, ATTR_CONVOLUTION_SPATIAL_DIMS = 105, 106
ATTR_ENGINEHEUR_MODE, ATTR_ENGINEHEUR_OPERATION_GRAPH, ATTR_ENGINEHEUR_RESULTS = 200, 201, 202
ATTR_ENGINECFG_ENGINE = 300
ATTR_EXECUTION_PLAN_HANDLE, ATTR_EXECUTION_PLAN_ENGINE_CONFIG, ATTR_EXECUTION_PLAN_WORKSPACE_SIZE = 400, 401, 402
# Each convolution node's attributes: ALPHA, BETA, CONV_DESC, W, X (dx), Y (dy) in this order from its base
# (the filter-gradient node names W "DW" and Y "DY"; the data-gradient node names X "DX").
ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA = 700
ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA = 706
ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA = 712
ATTR_OPERATIONGRAPH_HANDLE, ATTR_OPERATIONGRAPH_OPS = 800, 801
ATTR_TENSOR_BYTE_ALIGNMENT, ATTR_TENSOR_DATA_TYPE, ATTR_TENSOR_DIMENSIONS = 900, 901, 902
ATTR_TENSOR_STRIDES, ATTR_TENSOR_UNIQUE_ID = 903, 906
ATTR_VARIANT_PACK_UNIQUE_IDS, ATTR_VARIANT_PACK_DATA_POINTERS, ATTR_VARIANT_PACK_WORKSPACE = 1000, 1001, 1003
ATTR_ENGINE_GLOBAL_INDEX, ATTR_ENGINE_NUMERICAL_NOTE = 1301, 1303
HEUR_MODE_B, HEUR_MODE_FALLBACK, HEUR_MODE_A = 1, 2, 3
NUMERICAL_NOTE_TENSOR_CORE, NUMERICAL_NOTE_DOWN_CONVERT_INPUTS = 0, 1

_GRAPH_NODES = {
    "forward": (BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA),
    "backward_data": (BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                      ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA),
    "backward_filter": (BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                        ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA),
}
_UIDS = (c_int64 * 3)(1, 2, 3)  # x (or dx), w (or dw), y (or dy) in every variant pack
_MAX_CONFIGS = 8  # asked of each heuristic mode
_MAX_PLANS = 12  # distinct engines returned, over all modes


_graph_api: list[bool] = []


def has_graph_api() -> bool:
    """Whether the loaded cuDNN exports the backend API (asked once)."""
    if not _graph_api:
        _graph_api.append(all(hasattr(lib(), name) for name in _OPTIONAL if name.startswith("cudnnBackend")))
    return _graph_api[0]


def _backend(op: str, kind: int) -> int:
    d = c_void_p()
    call(op, "cudnnBackendCreateDescriptor", kind, ctypes.byref(d))
    return d.value


def _set(op: str, desc: int, attr: int, attr_type: int, ctype: type, *values: object) -> None:
    # Enums go in 8-byte slots: cuDNN reads their low 4 bytes (x86-64 is little-endian), so a wrong guess
    # of an enum's width can never make it read past the array.
    array = (ctype * len(values))(*values)
    call(op, "cudnnBackendSetAttribute", desc, attr, attr_type, len(values), array)


def _tensor(op: str, code: int, uid: int, shape: tuple[int, ...], alignment: int) -> int:
    d = _backend(op, BACKEND_TENSOR_DESCRIPTOR)
    _set(op, d, ATTR_TENSOR_DATA_TYPE, TYPE_DATA_TYPE, c_int64, code)
    _set(op, d, ATTR_TENSOR_DIMENSIONS, TYPE_INT64, c_int64, *shape)
    _set(op, d, ATTR_TENSOR_STRIDES, TYPE_INT64, c_int64, *c_strides(shape))
    _set(op, d, ATTR_TENSOR_UNIQUE_ID, TYPE_INT64, c_int64, uid)
    _set(op, d, ATTR_TENSOR_BYTE_ALIGNMENT, TYPE_INT64, c_int64, alignment)
    call(op, "cudnnBackendFinalize", d)
    return d


def _convolution_graph(op: str, direction: str, h: int, code: int, shapes: tuple[tuple, tuple, tuple],
                       padding: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                       alignment: int) -> int:
    """A finalized one-node operation graph for one convolution direction over packed NCHW tensors.

    Groups follow from the shapes: x has C channels, w has C / groups.
    """
    x, w, y = (_tensor(op, code, uid, shape, alignment) for uid, shape in zip(_UIDS, shapes, strict=True))
    conv = _backend(op, BACKEND_CONVOLUTION_DESCRIPTOR)
    _set(op, conv, ATTR_CONVOLUTION_COMP_TYPE, TYPE_DATA_TYPE, c_int64, code)
    _set(op, conv, ATTR_CONVOLUTION_CONV_MODE, TYPE_CONVOLUTION_MODE, c_int64, CROSS_CORRELATION)
    _set(op, conv, ATTR_CONVOLUTION_SPATIAL_DIMS, TYPE_INT64, c_int64, 2)
    _set(op, conv, ATTR_CONVOLUTION_DILATIONS, TYPE_INT64, c_int64, *dilation)
    _set(op, conv, ATTR_CONVOLUTION_FILTER_STRIDES, TYPE_INT64, c_int64, *stride)
    _set(op, conv, ATTR_CONVOLUTION_PRE_PADDINGS, TYPE_INT64, c_int64, *padding)
    _set(op, conv, ATTR_CONVOLUTION_POST_PADDINGS, TYPE_INT64, c_int64, *padding)
    call(op, "cudnnBackendFinalize", conv)
    kind, alpha = _GRAPH_NODES[direction]
    scalar, scalar_type = (c_float, TYPE_FLOAT) if code == DATA_FLOAT else (c_double, TYPE_DOUBLE)
    node = _backend(op, kind)
    _set(op, node, alpha, scalar_type, scalar, 1.0)
    _set(op, node, alpha + 1, scalar_type, scalar, 0.0)
    for offset, desc in ((2, conv), (3, w), (4, x), (5, y)):
        _set(op, node, alpha + offset, TYPE_BACKEND_DESCRIPTOR, c_void_p, desc)
    call(op, "cudnnBackendFinalize", node)
    graph = _backend(op, BACKEND_OPERATIONGRAPH_DESCRIPTOR)
    _set(op, graph, ATTR_OPERATIONGRAPH_OPS, TYPE_BACKEND_DESCRIPTOR, c_void_p, node)
    _set(op, graph, ATTR_OPERATIONGRAPH_HANDLE, TYPE_HANDLE, c_void_p, h)
    call(op, "cudnnBackendFinalize", graph)
    return graph  # the descriptors it references stay alive with it, for the process


def _engine_configs(op: str, graph: int, mode: int) -> list[int]:
    heur = _backend(op, BACKEND_ENGINEHEUR_DESCRIPTOR)
    _set(op, heur, ATTR_ENGINEHEUR_OPERATION_GRAPH, TYPE_BACKEND_DESCRIPTOR, c_void_p, graph)
    _set(op, heur, ATTR_ENGINEHEUR_MODE, TYPE_HEUR_MODE, c_int64, mode)
    call(op, "cudnnBackendFinalize", heur)
    configs = (c_void_p * _MAX_CONFIGS)(*(_backend(op, BACKEND_ENGINECFG_DESCRIPTOR) for _ in range(_MAX_CONFIGS)))
    count = c_int64(0)
    call(op, "cudnnBackendGetAttribute", heur, ATTR_ENGINEHEUR_RESULTS, TYPE_BACKEND_DESCRIPTOR, _MAX_CONFIGS,
         ctypes.byref(count), configs)
    for unused in configs[count.value:]:
        destroy(unused)
    return list(configs[:count.value])


def _engine_of(op: str, config: int) -> tuple[int, set[int]]:
    """(global engine index, numerical notes) of an engine config."""
    engine = _backend(op, BACKEND_ENGINE_DESCRIPTOR)
    try:
        count, index, notes = c_int64(0), c_int64(0), (c_int32 * 16)()
        call(op, "cudnnBackendGetAttribute", config, ATTR_ENGINECFG_ENGINE, TYPE_BACKEND_DESCRIPTOR, 1,
             ctypes.byref(count), (c_void_p * 1)(engine))
        call(op, "cudnnBackendGetAttribute", engine, ATTR_ENGINE_GLOBAL_INDEX, TYPE_INT64, 1,
             ctypes.byref(count), ctypes.byref(index))
        call(op, "cudnnBackendGetAttribute", engine, ATTR_ENGINE_NUMERICAL_NOTE, TYPE_NUMERICAL_NOTE,
             len(notes), ctypes.byref(count), notes)
        return index.value, set(notes[:count.value])
    finally:
        destroy(engine)


def convolution_plans(op: str, direction: str, h: int, code: int, shapes: tuple[tuple, tuple, tuple],
                      padding: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                      alignment: int, tensor_cores: bool) -> list[tuple[int, int, int]]:
    """Finalized execution plans as (plan descriptor, workspace bytes, engine index), one per engine.

    Engines come from the instant (A), the slower but better-informed (B) and the fallback heuristics, in
    that order, so the engine a plain heuristic would miss is still among those the caller times.
    ``shapes`` are (x, w, y), the variant-pack uids 1, 2, 3; without ``tensor_cores`` engines that compute
    float32 on tensor cores (TF32) are left out.
    """
    graph = _convolution_graph(op, direction, h, code, shapes, padding, stride, dilation, alignment)
    plans: list[tuple[int, int, int]] = []
    seen: set[int] = set()
    for mode in (HEUR_MODE_A, HEUR_MODE_B, HEUR_MODE_FALLBACK):
        try:
            configs = _engine_configs(op, graph, mode)
        except NativeLibraryError:  # a heuristic mode may not support the problem; the others still may
            continue
        for config in configs:
            index, notes = _engine_of(op, config)
            usable = index not in seen and len(plans) < _MAX_PLANS and (
                tensor_cores or not notes & {NUMERICAL_NOTE_TENSOR_CORE, NUMERICAL_NOTE_DOWN_CONVERT_INPUTS})
            if usable:
                seen.add(index)
                plan = _backend(op, BACKEND_EXECUTION_PLAN_DESCRIPTOR)
                _set(op, plan, ATTR_EXECUTION_PLAN_HANDLE, TYPE_HANDLE, c_void_p, h)
                _set(op, plan, ATTR_EXECUTION_PLAN_ENGINE_CONFIG, TYPE_BACKEND_DESCRIPTOR, c_void_p, config)
                if lib().cudnnBackendFinalize(plan) == STATUS_SUCCESS:  # an engine may refuse the problem
                    size, count = c_int64(0), c_int64(0)
                    call(op, "cudnnBackendGetAttribute", plan, ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, TYPE_INT64, 1,
                         ctypes.byref(count), ctypes.byref(size))
                    plans.append((plan, size.value, index))
                    continue
                destroy(plan)
            destroy(config)
    return plans


def destroy(desc: int) -> None:
    lib().cudnnBackendDestroyDescriptor(desc)


def execute(op: str, h: int, plan: int, ptrs: tuple[int, int, int], workspace: int) -> None:
    """Run an execution plan on (x, w, y) pointers: the one call per convolution launch."""
    lb = lib()
    pack = c_void_p()
    status = lb.cudnnBackendCreateDescriptor(BACKEND_VARIANT_PACK_DESCRIPTOR, ctypes.byref(pack))
    if status != STATUS_SUCCESS:
        check(status, f"{op} (cudnnBackendCreateDescriptor)")
    try:
        set_attr = lb.cudnnBackendSetAttribute
        status = (set_attr(pack, ATTR_VARIANT_PACK_UNIQUE_IDS, TYPE_INT64, 3, _UIDS)
                  or set_attr(pack, ATTR_VARIANT_PACK_DATA_POINTERS, TYPE_VOID_PTR, 3, (c_void_p * 3)(*ptrs))
                  or set_attr(pack, ATTR_VARIANT_PACK_WORKSPACE, TYPE_VOID_PTR, 1, (c_void_p * 1)(workspace or None))
                  or lb.cudnnBackendFinalize(pack)
                  or lb.cudnnBackendExecute(h, plan, pack))
        if status != STATUS_SUCCESS:
            check(status, f"{op} (cudnnBackendExecute)")
    finally:
        lb.cudnnBackendDestroyDescriptor(pack)

