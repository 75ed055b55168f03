"""ctypes bindings to NCCL: the one module that loads libnccl and declares the functions KeyDNN calls.

Loaded at first use (the nvidia-nccl-cu13 wheel's ``nvidia/nccl/lib``, a CUDA toolkit, or ``KEYDNN_NCCL``); a
missing library raises DeviceNotSupportedError naming every path tried. Every collective runs on the default
stream, the stream every KeyDNN kernel uses, so it is ordered after the kernels that produced its input.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_char, c_char_p, c_int, c_size_t, c_void_p

import numpy as np

from keydnn.domain.errors import DeviceNotSupportedError, NativeLibraryError

from ._libsearch import candidates

LIBRARY = "NCCL"
NAMES = ["libnccl.so.2", "libnccl.so"]
UNIQUE_ID_BYTES = 128

# ncclDataType_t and ncclRedOp_t (nccl.h)
DTYPES = {np.dtype(np.int64): 4, np.dtype(np.float32): 7, np.dtype(np.float64): 8}
OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3, "avg": 4}


class UniqueId(ctypes.Structure):
    _fields_ = [("internal", c_char * UNIQUE_ID_BYTES)]


_comm_p = POINTER(c_void_p)
_FUNCTIONS: dict[str, tuple[object, list[object]]] = {
    "ncclGetVersion": (c_int, [POINTER(c_int)]),
    "ncclGetUniqueId": (c_int, [POINTER(UniqueId)]),
    "ncclCommInitRank": (c_int, [_comm_p, c_int, UniqueId, c_int]),
    "ncclCommDestroy": (c_int, [c_void_p]),
    "ncclCommAbort": (c_int, [c_void_p]),
    "ncclGetErrorString": (c_char_p, [c_int]),
    # sendbuff, recvbuff, count, datatype, op, comm, stream
    "ncclAllReduce": (c_int, [c_void_p, c_void_p, c_size_t, c_int, c_int, c_void_p, c_void_p]),
    # sendbuff, recvbuff, count, datatype, root, comm, stream
    "ncclBroadcast": (c_int, [c_void_p, c_void_p, c_size_t, c_int, c_int, c_void_p, c_void_p]),
    # sendbuff, recvbuff, sendcount, datatype, comm, stream
    "ncclAllGather": (c_int, [c_void_p, c_void_p, c_size_t, c_int, c_void_p, c_void_p]),
}

_lib: ctypes.CDLL | None = None
_load_error: str | None = None


def _load() -> ctypes.CDLL:
    tried = []
    for path in candidates("KEYDNN_NCCL", NAMES):
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        for name, (restype, argtypes) in _FUNCTIONS.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        return lib
    raise OSError("no loadable NCCL (pip install nvidia-nccl-cu13, or set KEYDNN_NCCL); tried: " + "; ".join(tried))


def lib() -> ctypes.CDLL:
    global _lib, _load_error
    if _lib is None:
        if _load_error is None:
            try:
                _lib = _load()
            except (OSError, AttributeError) as e:
                _load_error = str(e)
        if _lib is None:
            raise DeviceNotSupportedError("NCCL", "cuda", _load_error or "")
    return _lib


def check(status: int, op: str) -> None:
    if status != 0:
        msg = lib().ncclGetErrorString(status)
        raise NativeLibraryError(LIBRARY, op, msg.decode() if msg else "unknown status", status)


def version() -> str:
    v = c_int()
    check(lib().ncclGetVersion(ctypes.byref(v)), "nccl version")
    code = v.value  # major*10000 + minor*100 + patch since 2.9
    return f"{code // 10000}.{code // 100 % 100}.{code % 100}"


def unique_id() -> bytes:
    uid = UniqueId()
    check(lib().ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
    return ctypes.string_at(ctypes.addressof(uid), UNIQUE_ID_BYTES)


def comm_init_rank(world_size: int, uid: bytes, rank: int) -> int:
    """A communicator for this rank on the current device (cudaSetDevice first); blocks until all ranks join."""
    if len(uid) != UNIQUE_ID_BYTES:
        raise NativeLibraryError(LIBRARY, "ncclCommInitRank", f"unique id of {len(uid)} bytes", -1)
    u = UniqueId()
    ctypes.memmove(ctypes.addressof(u), uid, UNIQUE_ID_BYTES)
    comm = c_void_p()
    check(lib().ncclCommInitRank(ctypes.byref(comm), int(world_size), u, int(rank)), "ncclCommInitRank")
    return comm.value


def comm_destroy(comm: int, abort: bool = False) -> None:
    check(lib().ncclCommAbort(comm) if abort else lib().ncclCommDestroy(comm), "ncclCommDestroy")


def _dtype(dtype: np.dtype, op: str) -> int:
    try:
        return DTYPES[np.dtype(dtype)]
    except KeyError:
        raise NativeLibraryError(LIBRARY, op, f"dtype {dtype} is not supported (float32, float64, int64)", -1) \
            from None


def all_reduce(send: int, recv: int, count: int, dtype: np.dtype, op: str, comm: int) -> None:
    check(lib().ncclAllReduce(send, recv, count, _dtype(dtype, "all_reduce"), OPS[op], comm, None),
          "ncclAllReduce")


def broadcast(send: int, recv: int, count: int, dtype: np.dtype, root: int, comm: int) -> None:
    check(lib().ncclBroadcast(send, recv, count, _dtype(dtype, "broadcast"), root, comm, None), "ncclBroadcast")


def all_gather(send: int, recv: int, count: int, dtype: np.dtype, comm: int) -> None:
    check(lib().ncclAllGather(send, recv, count, _dtype(dtype, "all_gather"), comm, None), "ncclAllGather")
