"""Normalisation layers: BatchNorm1d / BatchNorm2d (batch statistics while training, running statistics as
saved buffers in eval) and LayerNorm, over ``ops.norm``."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.device._device import CPU, Device
from keydnn.domain.errors import ArgumentError, DeviceMismatchError, DTypeError, ShapeError
from keydnn.infrastructure.backends import kernels_for
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.norm import batch_norm, layer_norm
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor, as_dtype


class _BatchNorm(Module):
    _ranks: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        *,
        device: Any = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        cls = type(self).__name__
        if not isinstance(num_features, (int, np.integer)) or isinstance(num_features, bool) or num_features <= 0:
            raise ShapeError(cls, f"num_features must be a positive int, got {num_features!r}")
        if not eps > 0 or not 0.0 <= momentum <= 1.0:
            raise ArgumentError(cls, f"need eps > 0 and 0 <= momentum <= 1, got eps={eps}, momentum={momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.affine = bool(affine)
        dev = Device(device) if device is not None else CPU
        dt = as_dtype(dtype, cls)
        self.gamma = Parameter((self.num_features,), dev, dtype=dt, initializer="ones") if affine else None
        self.beta = Parameter((self.num_features,), dev, dtype=dt) if affine else None
        self.register_buffer("running_mean", Tensor.zeros((self.num_features,), dev, dtype=dt))
        self.register_buffer("running_var", Tensor.ones((self.num_features,), dev, dtype=dt))

    def forward(self, x: Tensor) -> Tensor:
        cls = type(self).__name__
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ShapeError(
                cls,
                f"expects a {' or '.join(f'{r}-D' for r in self._ranks)} input with "
                f"{self.num_features} channels on axis 1",
                x,
            )
        if self.training:
            stats: list = []
            y = batch_norm(x, self.gamma, self.beta, self.eps, batch_stats=stats)
            self._update_running(x, *stats)
            return y
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = 1.0 / (self.running_var + self.eps).sqrt()
        if self.gamma is not None:
            scale = scale * self.gamma
        y = (x - self.running_mean.reshape(shape)) * scale.reshape(shape)
        return y + self.beta.reshape(shape) if self.beta is not None else y

    def _update_running(self, x: Tensor, mean: Any, invstd: Any) -> None:
        # PyTorch's convention: the running variance is the unbiased batch variance. One kernel, in place.
        rm, rv = self.running_mean, self.running_var
        if rm.device != x.device:
            raise DeviceMismatchError(type(self).__name__, f"running statistics on {rm.device}, input on "
                                      f"{x.device}: move the module with .to()", rm, x)
        if rm.dtype != x.dtype:
            raise DTypeError(type(self).__name__, f"running statistics are {rm.dtype}, the input {x.dtype}", rm, x)
        kernels_for(x.device).batch_norm_running_update(rm._data, rv._data, mean, invstd, self.momentum, self.eps,
                                                         x.numel() // x.shape[1])
        rm._version += 1
        rv._version += 1

    def get_config(self) -> dict[str, Any]:
        ref = self.running_mean
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "device": str(ref.device),
            "dtype": str(ref.dtype),
        }


@register_module()
class BatchNorm1d(_BatchNorm):
    """``BatchNorm1d(num_features, *, device=None, eps=1e-5, momentum=0.1, affine=True)`` over (N, C) or
    (N, C, L): normalises each channel with the batch mean and biased variance while training, and with the
    running statistics (updated as running = (1 - momentum) * running + momentum * batch) in eval mode."""

    _ranks = (2, 3)


@register_module()
class BatchNorm2d(_BatchNorm):
    """BatchNorm1d's behaviour over (N, C, H, W) inputs."""

    _ranks = (4,)


@register_module()
class LayerNorm(Module):
    """``LayerNorm(normalized_shape, *, device=None, eps=1e-5, affine=True)``: normalises over the trailing
    dims matching ``normalized_shape``, with elementwise gamma (ones) and beta (zeros)."""

    def __init__(
        self,
        normalized_shape: Any,
        *,
        device: Any = None,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        shape = (
            (normalized_shape,)
            if isinstance(normalized_shape, (int, np.integer))
            else tuple(normalized_shape)
        )
        if not shape or any(not isinstance(s, (int, np.integer)) or s <= 0 for s in shape):
            raise ShapeError("LayerNorm", f"normalized_shape must be positive ints, got {normalized_shape!r}")
        if not eps > 0:
            raise ArgumentError("LayerNorm", f"eps must be positive, got {eps}")
        self.normalized_shape, self.eps, self.affine = tuple(int(s) for s in shape), float(eps), bool(affine)
        dev = Device(device) if device is not None else CPU
        dt = as_dtype(dtype, "LayerNorm")
        self.gamma = Parameter(self.normalized_shape, dev, dtype=dt, initializer="ones") if affine else None
        self.beta = Parameter(self.normalized_shape, dev, dtype=dt) if affine else None
        self._device, self._dtype = dev, dt

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.gamma, self.beta, self.eps)

    def get_config(self) -> dict[str, Any]:
        dev, dt = (
            (self.gamma.device, self.gamma.dtype) if self.gamma is not None else (self._device, self._dtype)
        )
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "affine": self.affine,
            "device": str(dev),
            "dtype": str(dt),
        }
