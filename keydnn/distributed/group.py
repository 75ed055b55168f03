"""Process groups: the collectives (all-reduce, broadcast, all-gather, barrier) over one of two backends.

- ``nccl``: NCCL on the GPUs (one per rank, ``cuda:LOCAL_RANK``); the unique id travels over the store.
- ``cpu``: through rank 0 over the store (gather, reduce in rank order, send back). Slow, exact and
  deterministic; it runs anywhere, which is what the CPU tests and a laptop need.
Both reduce in place into the tensor's storage and keep its shape, dtype and device.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keydnn.domain.errors import DistributedError
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.tensor._tensor import Tensor

from .store import DEFAULT_TIMEOUT, Store

_REDUCE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


def _check(op: str, t: Any) -> None:
    if not isinstance(t, Tensor):
        raise DistributedError(f"{op}: expected a Tensor, got {type(t).__name__}")


class ProcessGroup:
    """All ranks of one run. Collectives must be called by every rank in the same order."""

    backend = "cpu"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rank, self.world_size = store.rank, store.world_size

    # the host path: storage -> ndarray -> rank 0 -> ndarray -> storage
    def all_reduce(self, t: Tensor, op: str = "sum") -> Tensor:
        _check("all_reduce", t)
        if op not in _REDUCE and op != "avg":
            raise DistributedError(f"all_reduce: unknown op {op!r} (sum, prod, max, min, avg)")
        k = kernels_for(t.device)
        parts = self.store.gather(k.to_host(t._data))
        if parts is not None:
            _agree("all_reduce", parts)
            out = parts[0].copy()
            for p in parts[1:]:
                out = _REDUCE["sum" if op == "avg" else op](out, p)
            if op == "avg":
                out = (out / self.world_size).astype(out.dtype)
            self.store.bcast(out)
        else:
            out = self.store.bcast()
        k.copyto(t._data, k.from_host(out))
        return t

    def broadcast(self, t: Tensor, src: int = 0) -> Tensor:
        _check("broadcast", t)
        k = kernels_for(t.device)
        parts = self.store.gather(k.to_host(t._data) if self.rank == src else None)
        value = self.store.bcast(parts[src] if parts is not None else None)
        if value.shape != t.shape or value.dtype != t.dtype:
            raise DistributedError(f"broadcast: rank {src} sent {value.dtype}{list(value.shape)}, rank "
                                   f"{self.rank} holds {t.dtype}{list(t.shape)}")
        k.copyto(t._data, k.from_host(value))
        return t

    def all_gather(self, t: Tensor) -> list[Tensor]:
        _check("all_gather", t)
        k = kernels_for(t.device)
        parts = self.store.gather(k.to_host(t._data))
        if parts is not None:
            _agree("all_gather", parts)
        parts = self.store.bcast(parts)
        return [Tensor._make(k.from_host(p), t.device, False, None) for p in parts]

    def barrier(self) -> None:
        self.store.bcast(self.store.gather(None) is not None)

    def destroy(self) -> None:
        self.store.close()


def _agree(op: str, parts: list[np.ndarray]) -> None:
    first = parts[0]
    for r, p in enumerate(parts[1:], 1):
        if p.shape != first.shape or p.dtype != first.dtype:
            raise DistributedError(f"{op}: rank 0 holds {first.dtype}{list(first.shape)}, rank {r} "
                                   f"{p.dtype}{list(p.shape)}")


class NcclGroup(ProcessGroup):
    """Collectives on CUDA tensors through NCCL; other collectives' metadata still travels over the store."""

    backend = "nccl"

    def __init__(self, store: Store, device_index: int) -> None:
        super().__init__(store)
        from keydnn.infrastructure.backends.cuda import _cudart, _nccl

        self._nccl = _nccl
        self.device_index = device_index
        _cudart.set_device(device_index)
        uid = self.store.bcast(_nccl.unique_id() if self.rank == 0 else None)
        self.comm = _nccl.comm_init_rank(self.world_size, uid, self.rank)

    def _storage(self, op: str, t: Tensor) -> Any:
        _check(op, t)
        a = t._data
        if not hasattr(a, "ptr") or getattr(a, "device", None) != self.device_index:
            raise DistributedError(f"{op}: the nccl group of rank {self.rank} reduces tensors on "
                                   f"cuda:{self.device_index}, got one on {t.device}")
        if not a.is_contiguous:
            raise DistributedError(f"{op}: tensor of shape {list(t.shape)} is not contiguous")
        return a

    def all_reduce(self, t: Tensor, op: str = "sum") -> Tensor:
        a = self._storage("all_reduce", t)
        if op not in self._nccl.OPS:
            raise DistributedError(f"all_reduce: unknown op {op!r} (sum, prod, max, min, avg)")
        self._nccl.all_reduce(a.ptr, a.ptr, a.size, a.dtype, op, self.comm)
        return t

    def broadcast(self, t: Tensor, src: int = 0) -> Tensor:
        a = self._storage("broadcast", t)
        self._nccl.broadcast(a.ptr, a.ptr, a.size, a.dtype, src, self.comm)
        return t

    def all_gather(self, t: Tensor) -> list[Tensor]:
        a = self._storage("all_gather", t)
        k = kernels_for(t.device)
        out = k.empty((self.world_size, *a.shape), a.dtype)
        self._nccl.all_gather(a.ptr, out.ptr, a.size, a.dtype, self.comm)
        return [Tensor._make(k.getitem(out, (r,)), t.device, False, None) for r in range(self.world_size)]

    def destroy(self) -> None:
        if self.comm:
            self._nccl.comm_destroy(self.comm)
            self.comm = 0
        super().destroy()


def from_env(backend: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> ProcessGroup:
    """The group described by RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and LOCAL_RANK for nccl), as the
    launcher ``python -m keydnn.distributed.run`` and torchrun set them."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        port = int(os.environ.get("MASTER_PORT", "29500"))
    except ValueError as exc:
        raise DistributedError(f"init_process_group: bad RANK/WORLD_SIZE/MASTER_PORT ({exc})") from None
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    backend = backend or os.environ.get("KEYDNN_DIST_BACKEND", "cpu")
    if backend not in ("cpu", "nccl"):
        raise DistributedError(f"init_process_group: unknown backend {backend!r} (cpu, nccl)")
    store = Store(rank, world, addr, port, timeout)
    if backend == "nccl":
        return NcclGroup(store, int(os.environ.get("LOCAL_RANK", str(rank))))
    return ProcessGroup(store)
