"""Fully connected layers: Linear (y = x W^T + b through the fused ``ops.linalg.linear``) and Dense, the
lazy Linear that learns ``in_features`` from its first input."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.device._device import CPU, Device
from keydnn.domain.errors import ShapeError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.linalg import linear
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor, as_dtype


@register_module()
class Linear(Module):
    """``Linear(in_features, out_features, bias=True, device=None, dtype=None, initializer=...)``.

    Weight (out, in) filled by the named initializer (default xavier_uniform), bias (out,) zeros.
    Input (..., in) -> (..., out).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, initializer: str = "xavier_uniform") -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ShapeError(type(self).__name__, f"{name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.use_bias = bool(bias)
        self.initializer = initializer
        self._device = Device(device) if device is not None else CPU
        self._dtype = as_dtype(dtype, type(self).__name__)
        self.weight = Parameter((self.out_features, self.in_features), self._device, dtype=self._dtype,
                                initializer=initializer)
        self.bias = Parameter((self.out_features,), self._device, dtype=self._dtype) if bias else None

    @property
    def device(self) -> Device:
        return self.weight.device

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.use_bias,
                "device": str(self.weight.device), "dtype": str(self.weight.dtype),
                "initializer": self.initializer}


@register_module()
class Dense(Module):
    """Lazy Linear: ``Dense(out_features, bias=True, device=None, dtype=None, initializer=...)`` creates its
    weight (out, in) on the first call, from the input's last axis. Create the optimizer after that call
    (or pass ``in_features``), since an unbuilt Dense has no parameters yet."""

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None,
                 initializer: str = "xavier_uniform", in_features: int | None = None) -> None:
        super().__init__()
        if not isinstance(out_features, (int, np.integer)) or isinstance(out_features, bool) or out_features <= 0:
            raise ShapeError("Dense", f"out_features must be a positive int, got {out_features!r}")
        self.out_features = int(out_features)
        self.use_bias = bool(bias)
        self.initializer = initializer
        self._device = Device(device) if device is not None else CPU
        self._dtype = as_dtype(dtype, "Dense")
        self.in_features: int | None = None
        self.weight: Parameter | None = None
        self.bias: Parameter | None = None
        if in_features is not None:
            self.build(in_features)

    @property
    def is_built(self) -> bool:
        return self.weight is not None

    def build(self, in_features: int) -> None:
        if self.is_built:
            raise RuntimeError(f"Dense: already built with in_features={self.in_features}")
        if not isinstance(in_features, (int, np.integer)) or isinstance(in_features, bool) or in_features <= 0:
            raise ShapeError("Dense", f"in_features must be a positive int, got {in_features!r}")
        self.in_features = in_features
        self.weight = Parameter((self.out_features, in_features), self._device, dtype=self._dtype,
                                initializer=self.initializer)
        if self.use_bias:
            self.bias = Parameter((self.out_features,), self._device, dtype=self._dtype)

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None:
            if x.ndim < 1:
                raise ShapeError("Dense", "input needs at least one axis", x)
            self._device, self._dtype = x.device, x.dtype
            self.build(x.shape[-1])
        elif x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ShapeError("Dense", f"built for in_features={self.in_features}, got input's last axis "
                             f"{x.shape[-1] if x.ndim else None}", x)
        return linear(x, self.weight, self.bias)

    def get_config(self) -> dict[str, Any]:
        dev = self.weight.device if self.weight is not None else self._device
        dtype = self.weight.dtype if self.weight is not None else self._dtype
        return {"out_features": self.out_features, "bias": self.use_bias, "device": str(dev),
                "dtype": str(dtype), "initializer": self.initializer, "in_features": self.in_features}
