"""The one ctypes binding of the OpenBLAS that NumPy (or SciPy) already loaded: hands its threading to
libkeydnn_cpu's OpenMP team through ``openblas_set_threads_callback_function`` (OpenBLAS >= 0.3.27).

Why: OpenBLAS's own workers spin (``sched_yield``) for about 2^28 cycles (~0.1 s) after every threaded call, and
on a machine with as many threads as cores they take the core the next OpenMP region needs: a 1.5 ms
convolution after a 0.06 ms matmul cost 20-30 ms. With the callback there is one pool. ``KEYDNN_BLAS_THREADS=
openblas`` keeps OpenBLAS's own pool. Only libraries already mapped into the process are touched
(RTLD_NOLOAD); a BLAS loaded later (SciPy imported afterwards) keeps its own pool until :func:`install` runs
again. A forked child gets OpenBLAS's own pool back (libgomp's team does not survive a fork).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPT_OUT = "KEYDNN_BLAS_THREADS"
_PREFIXES = ("", "scipy_")  # scipy-openblas (NumPy's and SciPy's wheels) prefixes every symbol
_SUFFIXES = ("", "64_", "_64")  # ILP64 builds suffix them


@dataclass
class _Library:
    path: str
    set_callback: Any
    get_num_threads: Any


_installed: list[_Library] = []
_fork_hook = [False]


def loaded_openblas_paths() -> list[str]:
    """Paths of every OpenBLAS shared library mapped into this process (Linux /proc/self/maps), in load order."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths: list[str] = []
    for line in lines:
        fields = line.split(maxsplit=5)  # address perms offset dev inode [path]
        path = fields[5] if len(fields) == 6 else ""
        name = os.path.basename(path)
        if "openblas" in name and ".so" in name and path not in paths:
            paths.append(path)
    return paths


def _lookup(lib: Any, base: str) -> tuple[Any | None, str]:
    """(the function, the ILP64 suffix it was found with) of ``base`` under any of the builds' spellings."""
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            fn = getattr(lib, prefix + base + suffix, None)
            if fn is not None:
                return fn, suffix
    return None, ""


def _symbol(lib: Any, base: str) -> Any | None:
    return _lookup(lib, base)[0]


def _open(path: str) -> _Library | None:
    try:
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | os.RTLD_LAZY)
    except OSError:
        return None
    set_callback = _symbol(lib, "openblas_set_threads_callback_function")
    get_num_threads = _symbol(lib, "openblas_get_num_threads")
    if set_callback is None or get_num_threads is None:
        return None  # an OpenBLAS older than 0.3.27 has no callback: it keeps its own pool
    set_callback.argtypes, set_callback.restype = [ctypes.c_void_p], None
    get_num_threads.argtypes, get_num_threads.restype = [], ctypes.c_int
    return _Library(path, set_callback, get_num_threads)


def gemm_entry_points() -> tuple[int, int, bool, str] | None:
    """(address of cblas_sgemm, of cblas_dgemm, whether they take 64-bit ints, library path) of the first
    loaded OpenBLAS that has both, for the native LSTM sequence's per-step GEMMs; None when no OpenBLAS is
    loaded (NumPy built on another BLAS)."""
    for path in loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | os.RTLD_LAZY)
        except OSError:
            continue
        (s, suffix), (d, d_suffix) = _lookup(lib, "cblas_sgemm"), _lookup(lib, "cblas_dgemm")
        if s is not None and d is not None and suffix == d_suffix:
            address = ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value
            return address[0] or 0, address[1] or 0, suffix != "", path
    return None


def _reset_in_child() -> None:
    for library in _installed:
        library.set_callback(None)
    _installed.clear()


def will_serve() -> bool:
    """Whether :func:`install` would route a loaded OpenBLAS through the callback (one pool in the process)."""
    if os.environ.get(OPT_OUT, "").strip().lower() == "openblas":
        return False
    return bool(installed()) or any(_open(path) is not None for path in loaded_openblas_paths())


def install(callback: Any) -> list[str]:
    """Route every loaded OpenBLAS's threading through ``callback`` (a ctypes function of libkeydnn_cpu);
    returns the paths now served. Idempotent; does nothing when ``KEYDNN_BLAS_THREADS=openblas``."""
    if os.environ.get(OPT_OUT, "").strip().lower() == "openblas":
        return []
    address = ctypes.cast(callback, ctypes.c_void_p).value
    done = {library.path for library in _installed}
    for path in loaded_openblas_paths():
        if path in done:
            continue
        library = _open(path)
        if library is not None:
            library.set_callback(address)
            _installed.append(library)
    if _installed and not _fork_hook[0] and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_in_child)
        _fork_hook[0] = True
    return installed()


def uninstall() -> None:
    """Give every library its own pool back."""
    _reset_in_child()


def installed() -> list[str]:
    return [library.path for library in _installed]


def blas_threads() -> dict[str, int]:
    """Path -> OpenBLAS's thread count (the number of jobs it splits a call into) for every library served."""
    return {library.path: int(library.get_num_threads()) for library in _installed}
