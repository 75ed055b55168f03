"""Seed import path (README): Sequential and Model."""

from keydnn.infrastructure.nn import Model, Sequential  # noqa: F401
