"""Seed import path: Model (and Sequential, which the seed also reached from here)."""

from keydnn.infrastructure.nn import Model, Sequential  # noqa: F401
