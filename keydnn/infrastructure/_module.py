"""Seed import path: Module."""

from keydnn.infrastructure.nn.module import Module  # noqa: F401
