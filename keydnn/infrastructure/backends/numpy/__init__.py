"""The NumPy reference backend: every contract kernel, in NumPy. The CPU's correctness baseline."""

from __future__ import annotations

from types import SimpleNamespace

from keydnn.infrastructure.backends import composite
from keydnn.infrastructure.backends.contract import KERNELS
from keydnn.infrastructure.backends.numpy import conv, core, nn, norm, pool


def table() -> SimpleNamespace:
    kernels = {}
    for module in (core, nn, conv, pool, norm):
        kernels.update({name: getattr(module, name) for name in KERNELS if hasattr(module, name)})
    table = composite.bind(SimpleNamespace(name="numpy", native_kernels=(), **kernels))
    missing = sorted(set(KERNELS) - set(vars(table)))
    if missing:
        raise ImportError(f"NumPy backend lacks contract kernels: {missing}")
    return table
