"""Data-parallel training: DistributedDataParallel (one model replica per rank, gradients averaged during the
backward pass, in buckets) and DistributedSampler (this rank's share of every global batch)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from keydnn.domain.errors import DistributedError
from keydnn.infrastructure.autograd import no_grad, register_post_accumulate_grad_hook
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.tensor._tensor import Tensor

from . import _state


class _Bucket:
    """Parameters whose gradients are averaged in one collective, once all of them are ready."""

    def __init__(self, params: list) -> None:
        self.params, self.ready = params, set()


class DistributedDataParallel(Module):
    """Wrap ``module`` so every rank trains the same weights on its own share of the data.

    At construction rank 0's parameters and buffers are broadcast to every rank. During ``backward`` each
    parameter reports when its gradient is complete (a post-accumulate hook); when every parameter of a
    bucket (about ``bucket_cap_mb`` of gradients, in reverse registration order, the order the backward
    pass finishes them) is ready, the bucket is flattened and averaged across ranks in one all-reduce while
    the backward pass goes on issuing work. The gradients are then the gradient of the mean loss over the
    global batch, so ``optimizer.step()`` (and ``fit``) need no change.
    """

    def __init__(self, module: Module, group: Any = None, *, bucket_cap_mb: float = 25.0,
                 broadcast_buffers: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise DistributedError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        self.module = module
        object.__setattr__(self, "_group", group or _state.group("DistributedDataParallel"))
        object.__setattr__(self, "_broadcast_buffers", bool(broadcast_buffers))
        params = [p for p in module.parameters() if p.requires_grad]
        devices = {p.device for p in params}
        if len(devices) > 1:
            raise DistributedError("DistributedDataParallel: parameters on several devices "
                                   f"{sorted(map(str, devices))}")
        with no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                self._group.broadcast(t, 0)
        object.__setattr__(self, "_buckets", _make_buckets(params, bucket_cap_mb))
        object.__setattr__(self, "_bucket_of", {id(p): b for b in self._buckets for p in b.params})
        object.__setattr__(self, "_handles", [register_post_accumulate_grad_hook(p, self._grad_ready)
                                              for p in params])

    @property
    def group(self) -> Any:
        return self._group

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        pending = [p for b in self._buckets if b.ready for p in b.params if id(p) not in b.ready]
        if pending:
            shapes = ", ".join(str(list(p.shape)) for p in pending[:4])
            raise DistributedError("DistributedDataParallel: the last backward pass gave no gradient to "
                                   f"{len(pending)} parameter(s) (shapes {shapes}); every parameter must "
                                   "take part in the loss on every rank")
        return self.module(*args, **kwargs)

    def _grad_ready(self, p: Any) -> None:
        bucket = self._bucket_of[id(p)]
        bucket.ready.add(id(p))
        if len(bucket.ready) == len(bucket.params):
            self._reduce(bucket)
            bucket.ready.clear()

    def _reduce(self, bucket: _Bucket) -> None:
        k = kernels_for(bucket.params[0].device)
        grads = [p.grad._data for p in bucket.params]
        flat = Tensor._make(k.concatenate([k.reshape(g, (-1,)) for g in grads], 0) if len(grads) > 1
                            else k.ascontiguousarray(k.reshape(grads[0], (-1,))), bucket.params[0].device,
                            False, None)
        self._group.all_reduce(flat, "avg")
        offset = 0
        for p, g in zip(bucket.params, grads, strict=True):
            n = int(np.prod(g.shape))
            p.grad._data = k.reshape(k.getitem(flat._data, (slice(offset, offset + n),)), tuple(g.shape))
            offset += n

    def close(self) -> None:
        """Remove the gradient hooks (the wrapped module trains alone again)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def state_dict(self) -> dict[str, Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        self.module.load_state_dict(state, strict)


def _make_buckets(params: list, cap_mb: float) -> list[_Bucket]:
    cap = max(float(cap_mb), 0.0) * 2**20
    buckets, current, size = [], [], 0
    for p in reversed(params):  # the last layers' gradients are complete first
        nbytes = p.numel() * p.dtype.itemsize
        if current and (size + nbytes > cap or p.dtype != current[0].dtype):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


class DistributedSampler:
    """This rank's batches of (x, y): every epoch draws one permutation of all samples from ``seed`` (the same
    on every rank), cuts it into global batches of ``batch_size * world_size`` and gives this rank its
    contiguous share of each, so the ranks together see what one process with the global batch would.
    Samples that do not fill the last global batch are dropped (every rank must take the same number of
    steps). Pass it to ``fit(sampler, None, ...)``."""

    def __init__(self, x: Any, y: Any, batch_size: int, *, group: Any = None, shuffle: bool = True,
                 seed: int = 0) -> None:
        g = group or _state.group("DistributedSampler")
        if len(x) != len(y):
            raise DistributedError(f"DistributedSampler: x has {len(x)} samples but y has {len(y)}")
        if int(batch_size) < 1:
            raise DistributedError(f"DistributedSampler: batch_size must be >= 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.rank, self.world_size = g.rank, g.world_size
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), 0
        self.total = len(x) // (self.batch_size * self.world_size)
        if self.total == 0:
            raise DistributedError(f"DistributedSampler: {len(x)} samples do not fill one global batch of "
                                   f"{self.batch_size} x {self.world_size} ranks")

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        n, b = len(self.x), self.batch_size
        order = (np.random.default_rng((self.seed, self.epoch)).permutation(n) if self.shuffle
                 else np.arange(n))
        self.epoch += 1
        for step in range(self.total):
            start = step * b * self.world_size + self.rank * b
            idx = order[start:start + b]
            yield self.x[idx], self.y[idx]
