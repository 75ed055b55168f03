"""Seed import path: Sequential."""

from keydnn.infrastructure.nn.containers import Sequential  # noqa: F401
