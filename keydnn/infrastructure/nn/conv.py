"""Convolution layers: Conv2d (stride, padding incl. 'same', dilation, groups, bias) and Conv2dTranspose
(stride, padding, output_padding), thin Modules over ``ops.conv``."""

from __future__ import annotations

from typing import Any

import numpy as np

from keydnn.domain.device._device import CPU, Device
from keydnn.domain.errors import ArgumentError, ShapeError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.conv import conv2d, conv_transpose2d, pair
from keydnn.infrastructure.parameter import Parameter
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor, as_dtype


def _positive(name: str, cls: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ShapeError(cls, f"{name} must be a positive int, got {value!r}")
    return int(value)


class _ConvBase(Module):
    def _setup(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        dilation: Any,
        groups: int,
        device: Any,
        dtype: Any,
    ) -> None:
        cls = type(self).__name__
        self.in_channels = _positive("in_channels", cls, in_channels)
        self.out_channels = _positive("out_channels", cls, out_channels)
        self.groups = _positive("groups", cls, groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ShapeError(cls, f"groups={groups} must divide in_channels and out_channels")
        self.kernel_size = pair(cls, "kernel_size", kernel_size, 1)
        self.stride, self.dilation = pair(cls, "stride", stride, 1), pair(cls, "dilation", dilation, 1)
        self._device = Device(device) if device is not None else CPU
        self._dtype = as_dtype(dtype, cls)

    @property
    def device(self) -> Device:
        return self.weight.device

    def _config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias is not None,
            "device": str(self.weight.device),
            "dtype": str(self.weight.dtype),
            "initializer": self.initializer,
        }


@register_module()
class Conv2d(_ConvBase):
    """``Conv2d(in_channels, out_channels, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
    bias=True, device=None, dtype=None, initializer='kaiming')``: NCHW, weight (out, in/groups, kh, kw).

    ``padding`` is an int, a pair, 'valid' or 'same' (stride 1; an odd total pads the extra cell at the
    bottom/right, as PyTorch does).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        *,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        initializer: str = "kaiming",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, dilation, groups, device, dtype)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ArgumentError("Conv2d", f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ArgumentError("Conv2d", "padding='same' needs stride 1")
            self.padding: Any = padding
        else:
            self.padding = pair("Conv2d", "padding", padding, 0)
        self.initializer = initializer
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(shape, self._device, dtype=self._dtype, initializer=initializer)
        self.bias = Parameter((self.out_channels,), self._device, dtype=self._dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def get_config(self) -> dict[str, Any]:
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {**self._config(), "padding": padding}


@register_module()
class Conv2dTranspose(_ConvBase):
    """``Conv2dTranspose(in_channels, out_channels, kernel_size, *, stride=1, padding=0, output_padding=0,
    dilation=1, groups=1, bias=True, device=None, dtype=None, initializer='kaiming')``.

    Weight (in, out/groups, kh, kw); H_out = (H - 1) * stride - 2 * padding + dilation * (k - 1) +
    output_padding + 1, with output_padding smaller than stride or dilation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        *,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        initializer: str = "kaiming",
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, dilation, groups, device, dtype)
        self.padding = pair("Conv2dTranspose", "padding", padding, 0)
        self.output_padding = pair("Conv2dTranspose", "output_padding", output_padding, 0)
        if any(
            o >= max(s, d) for o, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            raise ShapeError("Conv2dTranspose", "output_padding must be smaller than stride or dilation")
        self.initializer = initializer
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(shape, self._device, dtype=self._dtype, initializer=initializer)
        self.bias = Parameter((self.out_channels,), self._device, dtype=self._dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
            self.groups,
        )

    def get_config(self) -> dict[str, Any]:
        return {**self._config(), "padding": list(self.padding), "output_padding": list(self.output_padding)}
