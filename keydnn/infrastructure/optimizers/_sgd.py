"""Seed import path: SGD."""

from keydnn.infrastructure.optim.sgd import SGD  # noqa: F401
