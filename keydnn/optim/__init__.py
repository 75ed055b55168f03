"""Public optimizers API."""

from keydnn.infrastructure.optim import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
