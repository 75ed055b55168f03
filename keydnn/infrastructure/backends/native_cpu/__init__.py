"""The native CPU backend: libkeydnn_cpu's kernels, each overriding the NumPy kernel of the same name.

``overrides()`` is what the CPU kernel table merges over the NumPy table; ``library_info()`` says what
loaded, from where, and how it was built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keydnn.infrastructure.backends.native_cpu import _lib, conv, norm, pool, recurrent

_KERNELS = {
    conv: ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"),
    pool: ("max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"),
    norm: ("batch_norm_forward", "batch_norm_backward", "layer_norm_forward", "layer_norm_backward"),
    recurrent: ("lstm_gates_forward", "lstm_gates_backward", "lstm_sequence_forward", "lstm_sequence_backward"),
}


def overrides() -> dict[str, Callable[..., Any]]:
    """Contract name -> native kernel; raises NativeLibraryError when the library cannot be loaded."""
    _lib.load()
    return {name: getattr(module, name) for module, names in _KERNELS.items() for name in names}


def library_info() -> dict[str, Any]:
    """Path, compiler, build flags and OpenMP threads of the loaded library (NativeLibraryError if none)."""
    return _lib.info()
