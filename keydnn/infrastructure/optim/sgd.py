"""SGD with optional momentum, Nesterov momentum and L2 weight decay (PyTorch's update rule)."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.optim.optimizer import Optimizer


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0.0, *, nesterov=False, weight_decay=0.0)``.

    g += wd * p; buf = momentum * buf + g; p -= lr * (g + momentum * buf if nesterov else buf).
    """

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, *, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = self._check("lr", lr, 0.0, low_open=True, op="SGD")
        self.momentum = self._check("momentum", momentum, 0.0, op="SGD")
        self.weight_decay = self._check("weight_decay", weight_decay, 0.0, op="SGD")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ArgumentError("SGD", "nesterov=True needs momentum > 0")
        self.buffers = ("momentum_buffer",) if self.momentum else ()

    def hyper(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _update(self, k: Any, params: list, grads: list, states: list, step: int) -> None:
        bufs = [st["momentum_buffer"].data for st in states] if self.momentum else [None] * len(params)
        k.sgd_step(params, grads, bufs, self.lr, self.momentum, 0.0, self.nesterov, self.weight_decay)
