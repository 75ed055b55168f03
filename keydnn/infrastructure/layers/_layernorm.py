"""Seed import path: LayerNorm."""

from keydnn.infrastructure.nn.norm import LayerNorm  # noqa: F401
