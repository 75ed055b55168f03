"""Seed import path (README): Conv2d."""

from keydnn.infrastructure.nn.conv import Conv2d  # noqa: F401
