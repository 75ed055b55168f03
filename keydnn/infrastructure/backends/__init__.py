"""Kernel tables by device: the NumPy reference, the native CPU table (NumPy's with native overrides), CUDA.

``kernels_for(device)`` is the only place that looks at a device type. The CPU table is chosen by
``KEYDNN_CPU_BACKEND`` (``native``, the default when the library loads, or ``numpy``) and can be forced for
a block with ``use_cpu_backend("numpy")``. ``KEYDNN_BENCH_SLOWDOWN=<kernel>:<factor>`` (the benchmark canary,
read once here) slows one kernel in every table as it is built.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from keydnn.domain.errors import DeviceNotSupportedError, KeyDNNError
from keydnn.infrastructure.backends import slowdown

_SLOWDOWN = slowdown.parse(os.environ.get(slowdown.ENV))

CPU_BACKENDS = ("native", "numpy")


class _Tables:
    numpy: Any = None
    native: Any = None
    native_error: str | None = None
    cpu: Any = None
    cuda: dict[int, Any] = {}


def numpy_table() -> Any:
    if _Tables.numpy is None:
        from keydnn.infrastructure.backends import numpy as np_backend
        _Tables.numpy = slowdown.apply(np_backend.table(), _SLOWDOWN)
    return _Tables.numpy


def native_table() -> Any | None:
    """The NumPy table with every kernel the native CPU library provides replaced; None if it is missing."""
    if _Tables.native is None and _Tables.native_error is None:
        try:
            from keydnn.infrastructure.backends import native_cpu
            overrides = native_cpu.overrides()
        except (ImportError, OSError, KeyDNNError) as exc:
            _Tables.native_error = str(exc)
            return None
        from keydnn.infrastructure.backends import composite

        # The composite kernels (LSTM gates, softmax backward, the whole-sequence recurrent kernels) are bound to
        # the table they run over: bound again here, so that inside them the native kernels run (the NumPy
        # table's copies would call NumPy's, and the LSTM sequence would never reach the fused native gates).
        merged = {k: v for k, v in vars(numpy_table()).items() if k not in composite.COMPOSITE}
        merged.update(overrides)
        merged["name"] = "native"
        merged["native_kernels"] = tuple(sorted(overrides))
        _Tables.native = slowdown.apply(composite.bind(SimpleNamespace(**merged)), _SLOWDOWN)
    return _Tables.native


def _select_cpu(name: str) -> Any:
    if name not in CPU_BACKENDS:
        raise ValueError(f"CPU backend must be one of {CPU_BACKENDS}, got {name!r}")
    if name == "numpy":
        return numpy_table()
    table = native_table()
    if table is None:
        if os.environ.get("KEYDNN_CPU_BACKEND") == "native":
            raise DeviceNotSupportedError("native CPU backend", "cpu", _Tables.native_error or "")
        # The load error already says how to build or rebuild the library.
        warnings.warn(f"KeyDNN: native CPU library not loaded, using the NumPy kernels ({_Tables.native_error})",
                      RuntimeWarning, stacklevel=3)
        return numpy_table()
    return table


def cpu_table() -> Any:
    if _Tables.cpu is None:
        _Tables.cpu = _select_cpu(os.environ.get("KEYDNN_CPU_BACKEND", "native"))
    return _Tables.cpu


def cpu_backend_name() -> str:
    return getattr(cpu_table(), "name", "numpy")


@contextlib.contextmanager
def use_cpu_backend(name: str) -> Iterator[Any]:
    """Force the CPU kernel table ("numpy" or "native") inside the block; yields the table."""
    previous = cpu_table()
    _Tables.cpu = _select_cpu(name)
    try:
        yield _Tables.cpu
    finally:
        _Tables.cpu = previous


def _public_call() -> str:
    """The KeyDNN call the user made (the outermost frame inside the package, e.g. ``Tensor.rand``), so an
    error raised deep in the kernel lookup names it. Only runs on the error path."""
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    frame, name = sys._getframe(1), "cuda"
    while frame is not None:
        code = frame.f_code
        if os.path.abspath(code.co_filename).startswith(package + os.sep):
            name = getattr(code, "co_qualname", code.co_name).removesuffix(".__init__")  # co_qualname: 3.11+
        frame = frame.f_back
    return name


def cuda_table(index: int) -> Any:
    table = _Tables.cuda.get(index)
    if table is None:
        from keydnn.infrastructure.backends import cuda
        if not cuda.is_available():
            raise DeviceNotSupportedError(_public_call(), f"cuda:{index}", cuda.unavailable_reason())
        if index >= cuda.device_count():
            raise DeviceNotSupportedError(_public_call(), f"cuda:{index}",
                                          f"this machine has {cuda.device_count()} CUDA device(s)")
        table = _Tables.cuda[index] = slowdown.apply(cuda.table(index), _SLOWDOWN)
    return table


_cuda_tables = _Tables.cuda  # (the same dict, one global lookup away)


def kernels_for(device: Any) -> Any:
    """The kernel table for a Device (None means the CPU)."""
    index = None if device is None else device.index
    if index is None:
        return _Tables.cpu if _Tables.cpu is not None else cpu_table()
    table = _cuda_tables.get(index)  # every op asks: the built table is one lookup away
    return table if table is not None else cuda_table(index)
