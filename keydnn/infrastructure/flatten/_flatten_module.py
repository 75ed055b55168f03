"""Seed import path (README): Flatten."""

from keydnn.infrastructure.nn.layers import Flatten  # noqa: F401
