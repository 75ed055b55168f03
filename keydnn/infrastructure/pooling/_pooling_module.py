"""Seed import path (README): MaxPool2d, AvgPool2d, GlobalAvgPool2d."""

from keydnn.infrastructure.nn.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d  # noqa: F401
