"""Checks a kernel cannot raise, reported at the host's next synchronisation.

Some bad input is only visible in device data: a softmax cross-entropy label outside [0, C), say. Checking it
on the host first means reading the data back, a synchronisation per call that stalls the host-device
pipeline (it cost two per training step). Instead the kernel checks it and records the first failure in
the device's ``kd_fault`` record (ticket, index, value). Every read-back (``to_host``) and ``synchronize``
has waited for the device anyway; it then looks at the record and raises the failing call's own error, as
CUDA reports an asynchronous fault at the next synchronising call. The record is cleared after it is read,
so the device stays usable.

A launch that can fail takes a ticket with ``claim(device, error, details)``; ``error(index, value,
*details)`` builds the exception if that launch is the one that failed. A launch captured in a CUDA graph keeps
its ticket: each replay files it as pending again, so a replay's failure is reported at the next read-back.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keydnn.domain.errors import KeyDNNError
from keydnn.infrastructure import capture

from . import _cudart

MAX_PENDING = 4096  # tickets remembered between synchronisations (older ones lose their description)

ErrorFactory = Callable[..., KeyDNNError]


class _DeviceFaults:
    __slots__ = ("record", "ticket", "pending")

    def __init__(self, device: int) -> None:
        from .storage import new  # storage imports nothing from here; this keeps the import one-way

        self.record = new((3,), np.dtype(np.int64), device)  # kd_fault: ticket, index, value
        _cudart.memset(self.record.ptr, 0, self.record.nbytes)
        self.ticket = 0
        self.pending: dict[int, tuple[ErrorFactory, tuple]] = {}


_faults: dict[int, _DeviceFaults] = {}


def prepare(device: int) -> None:
    """Make ``device``'s fault record (done when its kernel table is built)."""
    if device not in _faults:
        _faults[device] = _DeviceFaults(device)


def claim(device: int, error: ErrorFactory, details: tuple = ()) -> tuple[int, int]:
    """(device address of the kd_fault record, ticket) for one launch on ``device``."""
    f = _faults.get(device)
    if f is None:
        f = _faults[device] = _DeviceFaults(device)
    f.ticket += 1
    pending = f.pending
    if len(pending) >= MAX_PENDING:  # a loop that never synchronises: forget the oldest half
        for old in list(pending)[: MAX_PENDING // 2]:
            del pending[old]
    pending[f.ticket] = (error, details)
    if capture.capturing():
        ticket, entry = f.ticket, pending[f.ticket]
        capture.on_replay(lambda _replay: f.pending.__setitem__(ticket, entry))
    return f.record.ptr, f.ticket


def raise_pending(device: int) -> None:
    """Raise the first fault recorded on ``device`` since the last check, if any; call after a sync."""
    f = _faults.get(device)
    if f is None or not f.pending:
        return
    pending, f.pending = f.pending, {}
    host = np.zeros(3, np.int64)
    _cudart.set_device(device)
    _cudart.memcpy(host.ctypes.data, f.record.ptr, host.nbytes, _cudart.MEMCPY_D2H)
    ticket, index, value = (int(v) for v in host)
    if ticket == 0:
        return
    _cudart.memset(f.record.ptr, 0, f.record.nbytes)
    entry = pending.get(ticket)
    if entry is None:
        raise KeyDNNError(f"cuda:{device}: a device-side check failed (ticket {ticket}, element {index}, value "
                          f"{value}) in a call too long before this synchronisation to name")
    error, details = entry
    raise error(index, value, *details)

