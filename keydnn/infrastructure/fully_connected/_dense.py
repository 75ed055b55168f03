"""Seed import path: Dense."""

from keydnn.infrastructure.nn.linear import Dense  # noqa: F401
