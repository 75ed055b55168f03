"""Seed import path: Conv2dTranspose."""

from keydnn.infrastructure.nn.conv import Conv2dTranspose  # noqa: F401
