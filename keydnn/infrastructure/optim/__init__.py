"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, each a fused kernel call per step."""

from keydnn.infrastructure.optim.adam import Adam, AdamW
from keydnn.infrastructure.optim.optimizer import Optimizer
from keydnn.infrastructure.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
