"""ctypes bindings to the CUDA runtime (libcudart): devices, memory, copies, events, streams and graphs.

Loading never raises: without the library or a GPU, ``is_available()`` is False and ``unavailable_reason()``
says why. Every function is declared once in ``_SIGNATURES``; every status goes through ``check``.

``stream`` is KeyDNN's current stream (0, the legacy default stream, unless graphs.py switched it); copies and
memsets go to it. While ``capturing`` names a CUDA graph capture, the calls a graph cannot replay (a
read-back, a host-to-device copy of host memory, a synchronisation) raise GraphCaptureError instead: these
wrappers are the only way KeyDNN moves bytes across the host-device boundary.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
from pathlib import Path

from keydnn.domain.errors import GraphCaptureError, NativeLibraryError

LIBRARY = "cudart"
MEMCPY_H2D, MEMCPY_D2H, MEMCPY_D2D = 1, 2, 3
ATTR_MULTIPROCESSOR_COUNT, ATTR_CC_MAJOR, ATTR_CC_MINOR = 16, 75, 76
ERROR_MEMORY_ALLOCATION = 2
STREAM_NON_BLOCKING = 1  # cudaStreamNonBlocking: no implicit ordering with the legacy default stream
CAPTURE_MODE_RELAXED = 2  # cudaStreamCaptureModeGlobal, ThreadLocal, Relaxed = 0, 1, 2

_c = ctypes
_SIGNATURES: dict[str, tuple] = {
    "cudaGetDeviceCount": (_c.c_int, [_c.POINTER(_c.c_int)]),
    "cudaSetDevice": (_c.c_int, [_c.c_int]),
    "cudaGetDevice": (_c.c_int, [_c.POINTER(_c.c_int)]),
    "cudaMalloc": (_c.c_int, [_c.POINTER(_c.c_void_p), _c.c_size_t]),
    "cudaFree": (_c.c_int, [_c.c_void_p]),
    "cudaMemcpy": (_c.c_int, [_c.c_void_p, _c.c_void_p, _c.c_size_t, _c.c_int]),
    "cudaMemcpyPeer": (_c.c_int, [_c.c_void_p, _c.c_int, _c.c_void_p, _c.c_int, _c.c_size_t]),
    "cudaMemset": (_c.c_int, [_c.c_void_p, _c.c_int, _c.c_size_t]),
    "cudaMemcpyAsync": (_c.c_int, [_c.c_void_p, _c.c_void_p, _c.c_size_t, _c.c_int, _c.c_void_p]),
    "cudaMemsetAsync": (_c.c_int, [_c.c_void_p, _c.c_int, _c.c_size_t, _c.c_void_p]),
    "cudaStreamCreateWithFlags": (_c.c_int, [_c.POINTER(_c.c_void_p), _c.c_uint]),
    "cudaStreamDestroy": (_c.c_int, [_c.c_void_p]),
    "cudaStreamSynchronize": (_c.c_int, [_c.c_void_p]),
    "cudaStreamBeginCapture": (_c.c_int, [_c.c_void_p, _c.c_int]),
    "cudaStreamEndCapture": (_c.c_int, [_c.c_void_p, _c.POINTER(_c.c_void_p)]),
    # (graph exec out, graph, flags): the same signature in CUDA 11.4 through 13, where cudaGraphInstantiate's
    # changed in CUDA 12
    "cudaGraphInstantiateWithFlags": (_c.c_int, [_c.POINTER(_c.c_void_p), _c.c_void_p, _c.c_ulonglong]),
    "cudaGraphLaunch": (_c.c_int, [_c.c_void_p, _c.c_void_p]),
    "cudaGraphExecDestroy": (_c.c_int, [_c.c_void_p]),
    "cudaGraphDestroy": (_c.c_int, [_c.c_void_p]),
    "cudaDeviceSynchronize": (_c.c_int, []),
    "cudaGetErrorString": (_c.c_char_p, [_c.c_int]),
    "cudaGetLastError": (_c.c_int, []),
    "cudaMemGetInfo": (_c.c_int, [_c.POINTER(_c.c_size_t), _c.POINTER(_c.c_size_t)]),
    "cudaDeviceGetAttribute": (_c.c_int, [_c.POINTER(_c.c_int), _c.c_int, _c.c_int]),
    "cudaGetDeviceProperties": (_c.c_int, [_c.c_void_p, _c.c_int]),
    "cudaRuntimeGetVersion": (_c.c_int, [_c.POINTER(_c.c_int)]),
    "cudaDriverGetVersion": (_c.c_int, [_c.POINTER(_c.c_int)]),
    "cudaEventCreate": (_c.c_int, [_c.POINTER(_c.c_void_p)]),
    "cudaEventRecord": (_c.c_int, [_c.c_void_p, _c.c_void_p]),
    "cudaEventSynchronize": (_c.c_int, [_c.c_void_p]),
    "cudaEventElapsedTime": (_c.c_int, [_c.POINTER(_c.c_float), _c.c_void_p, _c.c_void_p]),
    "cudaEventDestroy": (_c.c_int, [_c.c_void_p]),
}


def _candidates() -> list[str]:
    """Where libcudart may live, most specific first."""
    found: list[str] = []
    env = os.environ.get("KEYDNN_CUDART")
    if env:
        found.append(env)
    for name in ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"):
        found.append(name)
    lib = ctypes.util.find_library("cudart")
    if lib:
        found.append(lib)
    patterns = ["/usr/local/cuda*/lib64/libcudart.so*", "/usr/local/cuda*/targets/*/lib/libcudart.so*"]
    for site in sys.path:
        patterns.append(str(Path(site) / "nvidia" / "cuda_runtime" / "lib" / "libcudart.so*"))
        patterns.append(str(Path(site) / "nvidia" / "cu13" / "lib" / "libcudart.so*"))
        patterns.append(str(Path(site) / "torch" / "lib" / "libcudart*.so*"))
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern), reverse=True))
    return found


def _load() -> tuple[ctypes.CDLL | None, str]:
    errors = []
    for cand in _candidates():
        try:
            return ctypes.CDLL(cand), ""
        except OSError as exc:
            errors.append(f"{cand}: {exc}")
    return None, "libcudart not found (set KEYDNN_CUDART); tried " + "; ".join(errors[:4])


class _Runtime:
    """The loaded library with every function declared; attributes are the C functions."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.path = getattr(lib, "_name", "")
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


_rt: _Runtime | None = None
_reason = ""
_device_count = 0
current_device = -1  # cached so kernels switch devices without a cudaGetDevice call each time
stream = 0  # KeyDNN's current cudaStream_t (graphs.use_stream sets it, with the native library's and handles')
capturing = ""  # while a CUDA graph is being captured: what captures it, for error messages


def _driver_missing() -> str:
    """Why the NVIDIA driver (libcuda, which every CUDA runtime call goes through) cannot be loaded, or ''.
    Without it the runtime reports "driver version is insufficient", which sends a user looking for an
    upgrade of a driver that is not there."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver found (libcuda.so.1 cannot be loaded)"
    return ""


def _probe() -> None:
    global _rt, _reason, _device_count
    lib, _reason = _load()
    if lib is None:
        _reason = _driver_missing() or _reason
        return
    try:
        _rt = _Runtime(lib)
    except AttributeError as exc:  # an old or foreign libcudart missing a symbol
        _reason = f"libcudart lacks a function: {exc}"
        return
    count = ctypes.c_int(0)
    status = _rt.cudaGetDeviceCount(ctypes.byref(count))
    if status != 0:
        _reason = _driver_missing() or f"cudaGetDeviceCount failed: {error_string(status)} (code {status})"
        _rt.cudaGetLastError()  # clear the sticky-free error so later calls start clean
        return
    if count.value == 0:
        _reason = "no CUDA device found"
        return
    _device_count = count.value


def error_string(status: int) -> str:
    if _rt is None:
        return f"cuda error {status}"
    msg = _rt.cudaGetErrorString(status)
    return msg.decode() if msg else f"cuda error {status}"


def check(status: int, op: str) -> None:
    """Raise NativeLibraryError('cudart', op, message, code) when a runtime call failed."""
    if status != 0:
        raise NativeLibraryError(LIBRARY, op, error_string(status), status)


def is_available() -> bool:
    return _device_count > 0


def unavailable_reason() -> str:
    return "" if is_available() else _reason


def runtime() -> _Runtime:
    if _rt is None or not is_available():
        raise NativeLibraryError(LIBRARY, "load", _reason or "CUDA unavailable")
    return _rt


def device_count() -> int:
    return _device_count


def set_device(index: int) -> None:
    global current_device
    if index != current_device:
        check(runtime().cudaSetDevice(index), "cudaSetDevice")
        current_device = index


def get_device() -> int:
    value = ctypes.c_int(0)
    check(runtime().cudaGetDevice(ctypes.byref(value)), "cudaGetDevice")
    return value.value


def malloc(nbytes: int) -> int:
    """Raw cudaMalloc on the current device; returns the status too so the allocator can retry on OOM."""
    ptr = ctypes.c_void_p(0)
    status = runtime().cudaMalloc(ctypes.byref(ptr), nbytes)
    if status != 0:
        runtime().cudaGetLastError()  # cudaMalloc failures are not sticky; clear them
        return -status
    return ptr.value or 0


def free(ptr: int) -> None:
    check(runtime().cudaFree(ptr), "cudaFree")


_UNCAPTURABLE = {
    MEMCPY_D2H: "a device-to-host copy (Tensor.to_numpy(), item(), printing a CUDA tensor, or a "
                "check that reads device data) cannot be captured: a replay runs no host code, so the host "
                "would never see the value. Read results after replay()",
    MEMCPY_H2D: "a host-to-device copy cannot be captured: the graph would read the same host memory again on "
                "every replay (baking that data in, or reading memory freed since). Copy each new batch into "
                "the static input tensors before replay() (static.copy_from_numpy(batch) or "
                "static.copy_from(tensor)), and create constants before capture",
}


def refuse_in_capture(op: str, why: str) -> None:
    """Raise GraphCaptureError for ``op`` while a graph is being captured (no-op otherwise)."""
    if capturing:
        raise GraphCaptureError(op, f"{why} (while capturing {capturing})")


def memcpy(dst: int, src: int, nbytes: int, kind: int) -> None:
    """Copy ``nbytes``; in order on KeyDNN's current stream, and a read-back has finished when it returns."""
    if capturing and kind in _UNCAPTURABLE:
        refuse_in_capture("cudaMemcpy", _UNCAPTURABLE[kind])
    if nbytes:
        if stream:  # a device-to-pageable-host copy returns once it is done, as cudaMemcpy does
            check(runtime().cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync")
        else:
            check(runtime().cudaMemcpy(dst, src, nbytes, kind), "cudaMemcpy")


def memcpy_h2d_async(dst: int, src: int, nbytes: int) -> None:
    """Host-to-device copy queued on the current stream without waiting for earlier work (pageable ``src`` is
    staged before this returns): how a replay hook feeds a graph its per-step scalars."""
    refuse_in_capture("cudaMemcpyAsync", _UNCAPTURABLE[MEMCPY_H2D])
    if nbytes:
        check(runtime().cudaMemcpyAsync(dst, src, nbytes, MEMCPY_H2D, stream or None), "cudaMemcpyAsync")


def memcpy_peer(dst: int, dst_device: int, src: int, src_device: int, nbytes: int) -> None:
    refuse_in_capture("cudaMemcpyPeer", "a copy between devices cannot be captured (KeyDNN captures one device)")
    if nbytes:
        check(runtime().cudaMemcpyPeer(dst, dst_device, src, src_device, nbytes), "cudaMemcpyPeer")


def memset(ptr: int, value: int, nbytes: int) -> None:
    if nbytes:
        if stream:
            check(runtime().cudaMemsetAsync(ptr, value, nbytes, stream), "cudaMemsetAsync")
        else:
            check(runtime().cudaMemset(ptr, value, nbytes), "cudaMemset")


def synchronize() -> None:
    refuse_in_capture("synchronize", "waiting for the device cannot be captured (nothing runs during capture)")
    check(runtime().cudaDeviceSynchronize(), "cudaDeviceSynchronize")


# ---- streams and graphs (graphs.py drives them) ----------------------------------------------------------
def stream_create() -> int:
    """A new non-blocking stream on the current device."""
    handle = ctypes.c_void_p(0)
    check(runtime().cudaStreamCreateWithFlags(ctypes.byref(handle), STREAM_NON_BLOCKING),
          "cudaStreamCreateWithFlags")
    return handle.value or 0


def stream_synchronize(handle: int) -> None:
    refuse_in_capture("cudaStreamSynchronize", "waiting for a stream cannot be captured")
    check(runtime().cudaStreamSynchronize(handle or None), "cudaStreamSynchronize")


def begin_capture(handle: int) -> None:
    check(runtime().cudaStreamBeginCapture(handle, CAPTURE_MODE_RELAXED), "cudaStreamBeginCapture")


def end_capture(handle: int) -> tuple[int, int]:
    """(status, graph) of ending the capture on ``handle``; the caller checks (or, unwinding, ignores) it."""
    graph = ctypes.c_void_p(0)
    status = runtime().cudaStreamEndCapture(handle, ctypes.byref(graph))
    if status:
        runtime().cudaGetLastError()
    return status, graph.value or 0


def graph_instantiate(graph: int) -> int:
    exec_ = ctypes.c_void_p(0)
    check(runtime().cudaGraphInstantiateWithFlags(ctypes.byref(exec_), graph, 0), "cudaGraphInstantiateWithFlags")
    return exec_.value or 0


def graph_launch(exec_: int, handle: int) -> None:
    check(runtime().cudaGraphLaunch(exec_, handle or None), "cudaGraphLaunch")


def graph_destroy(graph: int, exec_: int) -> None:
    if exec_:
        check(runtime().cudaGraphExecDestroy(exec_), "cudaGraphExecDestroy")
    if graph:
        check(runtime().cudaGraphDestroy(graph), "cudaGraphDestroy")


def last_error() -> tuple[int, str]:
    """Read and clear the runtime's last error: (code, message)."""
    status = runtime().cudaGetLastError()
    return status, error_string(status) if status else ""


def mem_get_info() -> tuple[int, int]:
    """(free, total) bytes of the current device."""
    free_b, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    check(runtime().cudaMemGetInfo(ctypes.byref(free_b), ctypes.byref(total)), "cudaMemGetInfo")
    return free_b.value, total.value


def device_attribute(attr: int, index: int) -> int:
    value = ctypes.c_int(0)
    check(runtime().cudaDeviceGetAttribute(ctypes.byref(value), attr, index), "cudaDeviceGetAttribute")
    return value.value


def device_name(index: int) -> str:
    # ``name`` (char[256]) is the first field of cudaDeviceProp in every CUDA version; the buffer is
    # oversized so newer, longer structs never overrun it.
    buf = ctypes.create_string_buffer(16384)
    check(runtime().cudaGetDeviceProperties(buf, index), "cudaGetDeviceProperties")
    return buf.raw[:256].split(b"\0", 1)[0].decode(errors="replace")


def device_uuid(index: int) -> str:
    """The device's UUID as NVML spells it (``GPU-xxxxxxxx-...``): ``cudaUUID_t`` follows ``name[256]``."""
    buf = ctypes.create_string_buffer(16384)
    check(runtime().cudaGetDeviceProperties(buf, index), "cudaGetDeviceProperties")
    h = buf.raw[256:272].hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def versions() -> tuple[int, int]:
    """(runtime, driver) versions as CUDA encodes them (e.g. 13000)."""
    rt, drv = ctypes.c_int(0), ctypes.c_int(0)
    check(runtime().cudaRuntimeGetVersion(ctypes.byref(rt)), "cudaRuntimeGetVersion")
    check(runtime().cudaDriverGetVersion(ctypes.byref(drv)), "cudaDriverGetVersion")
    return rt.value, drv.value


class Event:
    """A CUDA event recorded on KeyDNN's current stream, for timing device work."""

    __slots__ = ("handle",)

    def __init__(self) -> None:
        handle = ctypes.c_void_p(0)
        check(runtime().cudaEventCreate(ctypes.byref(handle)), "cudaEventCreate")
        self.handle = handle.value

    def record(self) -> None:
        check(runtime().cudaEventRecord(self.handle, stream or None), "cudaEventRecord")

    def synchronize(self) -> None:
        refuse_in_capture("cudaEventSynchronize", "waiting for an event cannot be captured")
        check(runtime().cudaEventSynchronize(self.handle), "cudaEventSynchronize")

    def elapsed_ms(self, end: Event) -> float:
        """Milliseconds from this event to ``end`` (both recorded; waits for ``end``)."""
        end.synchronize()
        ms = ctypes.c_float(0.0)
        check(
            runtime().cudaEventElapsedTime(ctypes.byref(ms), self.handle, end.handle), "cudaEventElapsedTime"
        )
        return ms.value

    def __del__(self) -> None:
        if self.handle and _rt is not None:
            _rt.cudaEventDestroy(self.handle)
            self.handle = None


_probe()
