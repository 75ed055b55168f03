"""Shape and regularisation layers: Flatten and (inverted) Dropout."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.nn.module import Module
from keydnn.infrastructure.ops.activation import dropout
from keydnn.infrastructure.serialization import register_module
from keydnn.infrastructure.tensor._tensor import Tensor


@register_module()
class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...): merges axes ``start_axis``..``end_axis`` (default: all but the
    first)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis, self.end_axis = int(start_axis), int(end_axis)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_axis, self.end_axis)

    def get_config(self) -> dict[str, Any]:
        return {"start_axis": self.start_axis, "end_axis": self.end_axis}


@register_module()
class Dropout(Module):
    """Zeroes each element with probability p while training and scales the rest by 1/(1-p); the identity
    in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ArgumentError("Dropout", f"p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}
