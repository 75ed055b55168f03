"""The CUDA backend: ``table(index)`` gives every contract kernel for one device, on CudaArray storage.

Kernels live in family modules (elementwise, reduce, layout, index, creation, nn, optim; blas, conv,
batchnorm and rnn wrap cuBLAS/cuDNN; rnn takes over the composite whole-sequence recurrent kernels).
Importing this package never fails: without a GPU, the runtime or the built library, ``is_available()`` is
False and ``unavailable_reason()`` says why.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from keydnn.domain.errors import DeviceNotSupportedError
from keydnn.infrastructure.backends import composite
from keydnn.infrastructure.backends.contract import KERNELS

from . import _cudart, _lib, allocator, faults
from .storage import CudaArray, contiguous, empty

__all__ = [
    "CudaArray",
    "contiguous",
    "copy_between_devices",
    "device_count",
    "empty",
    "empty_cache",
    "is_available",
    "memory_stats",
    "synchronize",
    "table",
    "unavailable_reason",
]

# Creation kernels take the table's device index as their first argument.
_CREATION = ("empty", "zeros", "full", "arange", "uniform", "normal", "dropout_mask", "from_host")
# Kernels from the cuBLAS/cuDNN modules, imported when a table is built.
_LIBRARY_KERNELS = {
    "matmul": "blas",
    "conv2d_forward": "conv",
    "conv2d_backward_input": "conv",
    "conv2d_backward_weight": "conv",
    "batch_norm_forward": "batchnorm",
    "batch_norm_backward": "batchnorm",
}
_FAMILIES = ("elementwise", "reduce", "layout", "index", "nn", "optim", "creation")

_tables: dict[int, SimpleNamespace] = {}


def is_available() -> bool:
    return _cudart.is_available() and _lib.lib is not None


def unavailable_reason() -> str:
    if not _cudart.is_available():
        return _cudart.unavailable_reason()
    return "" if _lib.lib is not None else _lib.load_error


def device_count() -> int:
    return _cudart.device_count() if is_available() else 0


def _require(op: str, index: int) -> None:
    if not is_available():
        raise DeviceNotSupportedError(op, f"cuda:{index}", unavailable_reason())
    if not 0 <= index < _cudart.device_count():
        raise DeviceNotSupportedError(op, f"cuda:{index}", f"{_cudart.device_count()} CUDA device(s) present")


def _missing(name: str, module: str, reason: str):
    def kernel(*args: Any, **kwargs: Any) -> Any:
        raise DeviceNotSupportedError(name, "cuda", f"cuda/{module}.py could not be imported: {reason}")

    kernel.__name__ = name
    return kernel


def _build(index: int) -> SimpleNamespace:
    import importlib

    modules = {name: importlib.import_module(f"{__name__}.{name}") for name in _FAMILIES}
    kernels: dict[str, Any] = {}
    for name in KERNELS:
        if name in _LIBRARY_KERNELS:
            module = _LIBRARY_KERNELS[name]
            try:
                kernels[name] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
            except (ImportError, AttributeError) as exc:
                kernels[name] = _missing(name, module, str(exc))
            continue
        for family in _FAMILIES:
            module = modules[family]
            fn = getattr(module, name, None)
            # Only a kernel defined in the family itself (not one it imported, like storage.empty).
            if fn is not None and getattr(fn, "__module__", None) == module.__name__:
                kernels[name] = functools.partial(fn, index) if name in _CREATION else fn
                break
        else:
            if name not in composite.COMPOSITE:  # a composite kernel no family fuses is bound below, over
                raise ImportError(f"CUDA backend lacks contract kernel {name!r}")  # this table's own kernels
    tab = composite.bind(SimpleNamespace(
        name=f"cuda:{index}", device=index, native_kernels=tuple(sorted(kernels)), **kernels
    ))
    # The sequence kernels through cuDNN's RNN API; they fall back to the composite ones bound above.
    return importlib.import_module(f"{__name__}.rnn").install(tab)


def table(index: int = 0) -> SimpleNamespace:
    """The kernel table of cuda:``index`` (built once per device)."""
    tab = _tables.get(index)
    if tab is None:
        _require("cuda.table", index)
        tab = _tables[index] = _build(index)
        # the fault record is made now, before any graph capture could place it in the graph's private pool
        _cudart.set_device(index)
        faults.prepare(index)
    return tab


def synchronize(index: int | None = None) -> None:
    """Wait for all work queued on cuda:``index`` (the current device when None), then raise any error a
    kernel recorded (see faults)."""
    if index is not None:
        _require("synchronize", index)
        _cudart.set_device(index)
    _cudart.synchronize()
    faults.raise_pending(index if index is not None else max(_cudart.current_device, 0))


def memory_stats(index: int = 0) -> dict[str, int]:
    """The caching allocator's counters for cuda:``index``: allocated/reserved/peak bytes, cudaMalloc calls,
    cache hits."""
    return allocator.memory_stats(index)


def empty_cache(index: int | None = None) -> None:
    """Return cached, unused blocks to the driver (every device when ``index`` is None)."""
    allocator.empty_cache(index)


def copy_between_devices(a: CudaArray, index: int) -> CudaArray:
    """A contiguous copy of ``a`` on cuda:``index``."""
    _require("copy_between_devices", index)
    from .creation import copy_between_devices as copy

    return copy(a, index)
