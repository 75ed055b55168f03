"""Seed import path (README): Linear (and Dense)."""

from keydnn.infrastructure.nn.linear import Dense, Linear  # noqa: F401
