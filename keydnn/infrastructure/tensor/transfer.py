"""Copies between devices, all in one place: host->CUDA, CUDA->host, CUDA->CUDA. ``Tensor.to`` is
differentiable: the gradient is copied back to the source device."""

from __future__ import annotations

from typing import Any

from keydnn.domain.device._device import Device
from keydnn.infrastructure import autograd
from keydnn.infrastructure.autograd import Context
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.tensor._tensor import Tensor


def move(data: Any, src: Device, dst: Device) -> Any:
    """A copy of ``data`` (storage on ``src``) on ``dst``."""
    if src is dst:
        k = kernels_for(dst)
        return k.astype(data, data.dtype)
    if src.is_cpu():
        return kernels_for(dst).from_host(data)
    if dst.is_cpu():
        return kernels_for(src).to_host(data)
    from keydnn.infrastructure.backends import cuda
    return cuda.copy_between_devices(data, dst.index)


class ToDevice(autograd.Function):
    @staticmethod
    def forward(ctx, a, *, src, dst):
        ctx.saved = (src, dst)
        return move(a, src, dst)

    @staticmethod
    def backward(ctx, g):
        src, dst = ctx.saved
        return (move(g, dst, src),)


def to_device(t: Tensor, device: Device, *, copy: bool = False) -> Tensor:
    if device is t.device and not copy:
        return t
    ctx = Context(kernels_for(device))
    out = ToDevice.forward(ctx, t._data, src=t.device, dst=device)
    if t.requires_grad and autograd.is_grad_enabled():
        ctx.fn, ctx.parents, ctx.needs_grad = ToDevice, autograd.graph_inputs((t,)), [True]
        ctx.versions = [t._version]
        return Tensor._make(out, device, True, ctx)
    return Tensor._make(out, device, False, None)
