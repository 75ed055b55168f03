"""Seed import path: Linear."""

from keydnn.infrastructure.nn.linear import Linear  # noqa: F401
