"""Seed import path: BatchNorm1d, BatchNorm2d."""

from keydnn.infrastructure.nn.norm import BatchNorm1d, BatchNorm2d  # noqa: F401
