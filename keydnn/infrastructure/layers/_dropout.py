"""Seed import path: Dropout."""

from keydnn.infrastructure.nn.layers import Dropout  # noqa: F401
