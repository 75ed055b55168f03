"""Activation layers: ReLU, LeakyReLU, Sigmoid, Tanh, Softmax(axis) and LogSoftmax(axis), each a thin
Module over the Tensor op of the same name."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops._util import dim_alias
from keydnn.infrastructure.ops.activation import log_softmax, softmax
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor


@register_module()
class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


@register_module()
class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


@register_module()
class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


@register_module()
class LeakyReLU(Module):
    """max(x, alpha * x) for 0 <= alpha < 1; ``negative_slope`` is accepted as PyTorch's name for alpha."""

    def __init__(self, alpha: float = 0.01, *, negative_slope: float | None = None) -> None:
        super().__init__()
        self.alpha = float(alpha if negative_slope is None else negative_slope)
        if self.alpha < 0:
            raise ArgumentError("LeakyReLU", f"alpha must be >= 0, got {self.alpha}")

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


@register_module()
class Softmax(Module):
    """Softmax over ``axis`` (default the last), numerically stable, with its analytic backward."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = int(dim_alias(type(self).__name__, axis, dim, -1))

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


@register_module()
class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return log_softmax(x, self.axis)
