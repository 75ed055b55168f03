"""Seed import path: Parameter."""

from keydnn.infrastructure.parameter import Parameter  # noqa: F401
