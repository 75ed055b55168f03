"""ctypes bindings to cuDNN 9's RNN API (cudnn_adv.h), for the recurrent sequence kernels of rnn.py.

The functions are resolved on first use from the libcudnn that _cudnn.py loaded (cuDNN 9's libcudnn.so.9
exports the whole API and forwards to its sub-libraries) or, where a build lacks one there, from the
sub-library that defines it (libcudnn_adv, libcudnn_ops, libcudnn_graph: beside the loaded libcudnn, then
$KEYDNN_CUDNN_ADV / _OPS / _GRAPH and the usual directories). Errors carry cudnnGetErrorString's text and
cuDNN's last detailed message (_cudnn.check).
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_float, c_int, c_int32, c_size_t, c_uint32, c_ulonglong, c_void_p
from pathlib import Path

from keydnn.domain.errors import DeviceNotSupportedError

from . import _cudnn
from ._cudnn import _new, _out_p, _p, call, check, lib
from ._libsearch import candidates
from .storage import c_strides

# Values from cudnn_adv.h (cuDNN 9): cudnnRNNAlgo_t, cudnnRNNMode_t, cudnnRNNBiasMode_t, cudnnDirectionMode_t,
# cudnnRNNInputMode_t, cudnnForwardMode_t, cudnnRNNDataLayout_t, cudnnWgradMode_t and the auxFlags #defines of
# cudnnSetRNNDescriptor_v8; tests/cuda/test_cudnn_rnn.py checks them against the installed header by the
# names in RNN_HEADER_NAMES. The data and math types (_cudnn.DATA_*, _cudnn.*_MATH) come from cudnn_graph.h.
RNN_ALGO_STANDARD, RNN_ALGO_PERSIST_STATIC, RNN_ALGO_PERSIST_STATIC_SMALL_H = 0, 1, 3
RNN_RELU, RNN_TANH, RNN_LSTM, RNN_GRU = 0, 1, 2, 3
RNN_DOUBLE_BIAS = 2
RNN_UNIDIRECTIONAL, RNN_BIDIRECTIONAL = 0, 1
RNN_LINEAR_INPUT = 0
FWD_MODE_INFERENCE, FWD_MODE_TRAINING = 0, 1
RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED = 0, 1
WGRAD_MODE_ADD = 0
RNN_PADDED_IO_DISABLED, RNN_PADDED_IO_ENABLED = 0, 1  # #define CUDNN_RNN_PADDED_IO_DISABLED 0, _ENABLED (1U << 0)
RNN_HEADER_NAMES = {
    "RNN_ALGO_STANDARD": "CUDNN_RNN_ALGO_STANDARD", "RNN_ALGO_PERSIST_STATIC": "CUDNN_RNN_ALGO_PERSIST_STATIC",
    "RNN_ALGO_PERSIST_STATIC_SMALL_H": "CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H",
    "RNN_PADDED_IO_ENABLED": "CUDNN_RNN_PADDED_IO_ENABLED", "RNN_RELU": "CUDNN_RNN_RELU", "RNN_TANH": "CUDNN_RNN_TANH",
    "RNN_LSTM": "CUDNN_LSTM", "RNN_GRU": "CUDNN_GRU", "RNN_DOUBLE_BIAS": "CUDNN_RNN_DOUBLE_BIAS",
    "RNN_UNIDIRECTIONAL": "CUDNN_UNIDIRECTIONAL", "RNN_BIDIRECTIONAL": "CUDNN_BIDIRECTIONAL",
    "RNN_LINEAR_INPUT": "CUDNN_LINEAR_INPUT", "FWD_MODE_INFERENCE": "CUDNN_FWD_MODE_INFERENCE",
    "FWD_MODE_TRAINING": "CUDNN_FWD_MODE_TRAINING",
    "RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED": "CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED",
    "RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED": "CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED",
    "WGRAD_MODE_ADD": "CUDNN_WGRAD_MODE_ADD", "RNN_PADDED_IO_DISABLED": "CUDNN_RNN_PADDED_IO_DISABLED",
}

_int_p, _size_p = POINTER(c_int), POINTER(c_size_t)
# Signatures from cudnn_adv.h (RNN), cudnn_ops.h (dropout) and cudnn_graph.h (N-d tensor descriptors).
_RNN_FUNCTIONS: dict[str, tuple[object, list[object]]] = {
    "cudnnCreateRNNDescriptor": (c_int, [_out_p]),
    # rnnDesc, algo, cellMode, biasMode, dirMode, inputMode, dataType, mathPrec, mathType, inputSize,
    # hiddenSize, projSize, numLayers, dropoutDesc, auxFlags
    "cudnnSetRNNDescriptor_v8": (c_int, [_p, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int,
                                         c_int32, c_int32, c_int32, c_int32, _p, c_uint32]),
    # handle, rnnDesc, *weightSpaceSize
    "cudnnGetRNNWeightSpaceSize": (c_int, [_p, _p, _size_p]),
    # handle, rnnDesc, fwdMode, xDesc, *workSpaceSize, *reserveSpaceSize
    "cudnnGetRNNTempSpaceSizes": (c_int, [_p, _p, c_int, _p, _size_p, _size_p]),
    # handle, rnnDesc, pseudoLayer, weightSpaceSize, weightSpace, linLayerID, mDesc, **mAddr, bDesc, **bAddr
    "cudnnGetRNNWeightParams": (c_int, [_p, _p, c_int32, c_size_t, _p, c_int32, _p, _out_p, _p, _out_p]),
    "cudnnCreateRNNDataDescriptor": (c_int, [_out_p]),
    # rnnDataDesc, dataType, layout, maxSeqLength, batchSize, vectorSize, seqLengthArray[] (host), paddingFill
    "cudnnSetRNNDataDescriptor": (c_int, [_p, c_int, c_int, c_int, c_int, c_int, _int_p, _p]),
    # handle, rnnDesc, fwdMode, devSeqLengths (device int32), xDesc, x, yDesc, y, hDesc, hx, hy, cDesc, cx,
    # cy, weightSpaceSize, weightSpace, workSpaceSize, workSpace, reserveSpaceSize, reserveSpace
    "cudnnRNNForward": (c_int, [_p, _p, c_int] + [_p] * 11 + [c_size_t, _p] * 3),
    # handle, rnnDesc, devSeqLengths, yDesc, y, dy, xDesc, dx, hDesc, hx, dhy, dhx, cDesc, cx, dcy, dcx,
    # weightSpaceSize, weightSpace, workSpaceSize, workSpace, reserveSpaceSize, reserveSpace
    "cudnnRNNBackwardData_v8": (c_int, [_p] * 16 + [c_size_t, _p] * 3),
    # handle, rnnDesc, addGrad, devSeqLengths, xDesc, x, hDesc, hx, yDesc, y, weightSpaceSize,
    # dweightSpace, workSpaceSize, workSpace, reserveSpaceSize, reserveSpace
    "cudnnRNNBackwardWeights_v8": (c_int, [_p, _p, c_int] + [_p] * 7 + [c_size_t, _p] * 3),
    "cudnnCreateDropoutDescriptor": (c_int, [_out_p]),
    # dropoutDesc, handle, dropout, states, stateSizeInBytes, seed
    "cudnnSetDropoutDescriptor": (c_int, [_p, _p, c_float, _p, c_size_t, c_ulonglong]),
    # tensorDesc, dataType, nbDims, dimA[], strideA[]
    "cudnnSetTensorNdDescriptor": (c_int, [_p, c_int, c_int, _int_p, _int_p]),
    # tensorDesc, nbDimsRequested, *dataType, *nbDims, dimA[], strideA[]
    "cudnnGetTensorNdDescriptor": (c_int, [_p, c_int, _int_p, _int_p, _int_p, _int_p]),
}
# cuDNN 9 splits itself into sub-libraries; libcudnn.so.9 exports the whole API and forwards, but where a
# build of it lacks a symbol it is looked up in the sub-library that defines it.
_SUBLIBRARIES = ("adv", "ops", "graph")
_rnn_functions: dict[str, object] = {}
_rnn_error: list[str] = []


def _sublibraries() -> list[ctypes.CDLL]:
    found = []
    for sub in _SUBLIBRARIES:
        names = [f"libcudnn_{sub}.so.9", f"libcudnn_{sub}.so"]
        paths = candidates(f"KEYDNN_CUDNN_{sub.upper()}", names)
        loaded = _cudnn._lib_path
        if loaded and "/" in loaded:  # beside the libcudnn that loaded first
            paths = [str(Path(loaded).parent / n) for n in names] + paths
        for path in paths:
            try:
                found.append(ctypes.CDLL(path))
                break
            except OSError:
                continue
    return found


def rnn_api() -> dict[str, object]:
    """The RNN functions, declared (resolved once); DeviceNotSupportedError names what is missing."""
    if not _rnn_functions and not _rnn_error:
        libs = [lib()]
        missing = []
        for name, (restype, argtypes) in _RNN_FUNCTIONS.items():
            fn = next((getattr(lb, name) for lb in libs if hasattr(lb, name)), None)
            if fn is None and len(libs) == 1:
                libs += _sublibraries()
                fn = next((getattr(lb, name) for lb in libs if hasattr(lb, name)), None)
            if fn is None:
                missing.append(name)
                continue
            fn.restype, fn.argtypes = restype, argtypes
            _rnn_functions[name] = fn
        if missing:
            _rnn_functions.clear()
            _rnn_error.append(f"the loaded cuDNN ({_cudnn._lib_path}) and its sub-libraries lack "
                              + ", ".join(missing))
    if _rnn_error:
        raise DeviceNotSupportedError("cuDNN RNN", "cuda", _rnn_error[0])
    return _rnn_functions


def rnn_call(op: str, name: str, *args: object) -> None:
    """Call RNN-API function ``name`` and check its status (the message carries cudnnGetErrorString's)."""
    check(rnn_api()[name](*args), f"{op} ({name})")


def _rnn_new(op: str, create: str) -> int:
    d = c_void_p()
    rnn_call(op, create, ctypes.byref(d))
    return d.value


def tensor_nd(op: str, dtype: int, shape: tuple[int, ...]) -> int:
    """A packed N-d tensor descriptor (the RNN API's h and c are 3-d: layers * directions, batch, hidden)."""
    d = _new(op, "cudnnCreateTensorDescriptor")
    n = len(shape)
    rnn_call(op, "cudnnSetTensorNdDescriptor", d, dtype, n, (c_int * n)(*shape), (c_int * n)(*c_strides(shape)))
    return d


def tensor_nd_shape(op: str, desc: int) -> tuple[int, ...]:
    """The dimensions a tensor descriptor holds (up to 8)."""
    dtype, nb, dims, strides = c_int(), c_int(), (c_int * 8)(), (c_int * 8)()
    rnn_call(op, "cudnnGetTensorNdDescriptor", desc, 8, ctypes.byref(dtype), ctypes.byref(nb), dims, strides)
    return tuple(dims[:nb.value])


_dropouts: dict[int, int] = {}


def no_dropout(op: str, h: int) -> int:
    """A dropout descriptor with p = 0 for this handle: no RNG states (NULL, 0 bytes), none are drawn."""
    d = _dropouts.get(h)
    if d is None:
        d = _rnn_new(op, "cudnnCreateDropoutDescriptor")
        rnn_call(op, "cudnnSetDropoutDescriptor", d, h, 0.0, None, 0, 0)
        _dropouts[h] = d
    return d


def rnn_descriptor(op: str, h: int, cell_mode: int, dtype: int, math_type: int, input_size: int,
                   hidden_size: int, bidirectional: bool = False, algo: int = RNN_ALGO_STANDARD,
                   aux_flags: int = RNN_PADDED_IO_DISABLED) -> int:
    """One layer (by default the STANDARD algorithm; two biases, linear input, no projection, no padded I/O)
    computing in ``dtype``."""
    d = _rnn_new(op, "cudnnCreateRNNDescriptor")
    rnn_call(op, "cudnnSetRNNDescriptor_v8", d, algo, cell_mode, RNN_DOUBLE_BIAS,
             RNN_BIDIRECTIONAL if bidirectional else RNN_UNIDIRECTIONAL, RNN_LINEAR_INPUT, dtype, dtype,
             math_type, input_size, hidden_size, hidden_size, 1, no_dropout(op, h), aux_flags)
    return d


def rnn_data(op: str, dtype: int, steps: int, batch: int, vector: int,
             layout: int = RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED) -> int:
    """An RNN data descriptor of (steps, batch, vector) time-major data, every sequence ``steps`` long.

    SEQ_MAJOR_PACKED is the one layout cuDNN takes with padded I/O disabled; with equal lengths its memory
    is exactly the dense (T, N, vector) array, as is SEQ_MAJOR_UNPACKED's (which needs padded I/O enabled).
    """
    d = _rnn_new(op, "cudnnCreateRNNDataDescriptor")
    fill = c_float(0.0)
    rnn_call(op, "cudnnSetRNNDataDescriptor", d, dtype, layout, steps, batch, vector,
             (c_int * batch)(*([steps] * batch)),
             None if layout == RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED else ctypes.byref(fill))
    return d


def rnn_weight_space_size(op: str, h: int, desc: int) -> int:
    size = c_size_t()
    rnn_call(op, "cudnnGetRNNWeightSpaceSize", h, desc, ctypes.byref(size))
    return size.value


def rnn_temp_space_sizes(op: str, h: int, desc: int, mode: int, x_desc: int) -> tuple[int, int]:
    """(workspace bytes, reserve-space bytes) of a forward in ``mode`` (TRAINING keeps a reserve space)."""
    work, reserve = c_size_t(), c_size_t()
    rnn_call(op, "cudnnGetRNNTempSpaceSizes", h, desc, mode, x_desc, ctypes.byref(work), ctypes.byref(reserve))
    return work.value, reserve.value


def rnn_weight_params(op: str, h: int, desc: int, pseudo_layer: int, space_bytes: int, space: int,
                      lin_layer: int) -> tuple[int, tuple[int, ...], int, tuple[int, ...]]:
    """(matrix address, matrix dims, bias address, bias dims) of one gate's parameters in a weight space."""
    m_desc, b_desc = _new(op, "cudnnCreateTensorDescriptor"), _new(op, "cudnnCreateTensorDescriptor")
    try:
        m_addr, b_addr = c_void_p(), c_void_p()
        rnn_call(op, "cudnnGetRNNWeightParams", h, desc, pseudo_layer, space_bytes, space, lin_layer, m_desc,
                 ctypes.byref(m_addr), b_desc, ctypes.byref(b_addr))
        m_dims = tensor_nd_shape(op, m_desc) if m_addr.value else ()
        b_dims = tensor_nd_shape(op, b_desc) if b_addr.value else ()
        return m_addr.value or 0, m_dims, b_addr.value or 0, b_dims
    finally:
        call(op, "cudnnDestroyTensorDescriptor", m_desc)
        call(op, "cudnnDestroyTensorDescriptor", b_desc)
