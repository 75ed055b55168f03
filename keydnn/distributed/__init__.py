"""Several processes, one model: process groups (NCCL on GPUs, a host backend anywhere), data-parallel
training, and a launcher (``python -m keydnn.distributed.run --nproc N script.py``), shaped like
``torch.distributed``."""

from __future__ import annotations

from typing import Any

from keydnn.infrastructure.tensor._tensor import Tensor

from . import _state
from .ddp import DistributedDataParallel, DistributedSampler
from .group import NcclGroup, ProcessGroup, from_env
from .store import DEFAULT_TIMEOUT

__all__ = ["DistributedDataParallel", "DistributedSampler", "NcclGroup", "ProcessGroup", "all_gather",
           "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_rank", "get_world_size",
           "init_process_group", "is_initialized"]


def init_process_group(backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> ProcessGroup:
    """Join the run described by the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK).
    ``backend``: "nccl" (CUDA tensors, one GPU per rank) or "cpu" (default; any tensors, through rank 0)."""
    g = from_env(backend, timeout)
    _state.set_group(g)
    return g


def is_initialized() -> bool:
    return _state._default is not None


def get_rank() -> int:
    return _state.group("get_rank").rank


def get_world_size() -> int:
    return _state.group("get_world_size").world_size


def all_reduce(t: Tensor, op: str = "sum") -> Tensor:
    return _state.group("all_reduce").all_reduce(t, op)


def broadcast(t: Tensor, src: int = 0) -> Tensor:
    return _state.group("broadcast").broadcast(t, src)


def all_gather(t: Tensor) -> list[Tensor]:
    return _state.group("all_gather").all_gather(t)


def barrier() -> None:
    _state.group("barrier").barrier()


def destroy_process_group() -> None:
    g: Any = _state._default
    if g is not None:
        g.destroy()
        _state.set_group(None)
