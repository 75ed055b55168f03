"""Pooling layers: MaxPool2d, AvgPool2d (``(kernel_size, *, stride=None -> kernel, padding=0)``) and
GlobalAvgPool2d, thin Modules over ``ops.pool``."""

from __future__ import annotations

from typing import Any

from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.conv import pair
from keydnn.infrastructure.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, *, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        cls = type(self).__name__
        self.kernel_size = pair(cls, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else pair(cls, "stride", stride, 1)
        self.padding = pair(cls, "padding", padding, 0)

    def get_config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
        }


@register_module()
class MaxPool2d(_Pool2d):
    """Max over windows; pads with -inf; the gradient goes to the first maximum of each window."""

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


@register_module()
class AvgPool2d(_Pool2d):
    """Mean over windows; padded cells count as zeros and the divisor is always kh*kw."""

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


@register_module()
class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, 1, 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool2d(x)
