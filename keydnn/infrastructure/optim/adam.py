"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay), bias-corrected."""

from __future__ import annotations

from typing import Any

from keydnn.domain.errors import ArgumentError
from keydnn.infrastructure.optim.optimizer import Optimizer


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``, PyTorch's update rule."""

    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params)
        name = type(self).__name__
        self.lr = self._check("lr", lr, 0.0, low_open=True, op=name)
        if len(tuple(betas)) != 2:
            raise ArgumentError(name, f"betas must be a pair, got {betas!r}")
        self.betas = (self._check("betas[0]", betas[0], 0.0, 1.0, op=name),
                      self._check("betas[1]", betas[1], 0.0, 1.0, op=name))
        self.eps = self._check("eps", eps, 0.0, op=name)
        self.weight_decay = self._check("weight_decay", weight_decay, 0.0, op=name)

    def hyper(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, k: Any, params: list, grads: list, states: list, step: int) -> None:
        k.adam_step(params, grads, [st["exp_avg"].data for st in states],
                    [st["exp_avg_sq"].data for st in states], step, self.lr, self.betas[0], self.betas[1],
                    self.eps, self.weight_decay, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * wd before the Adam update (default wd 0.01)."""

    decoupled = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
