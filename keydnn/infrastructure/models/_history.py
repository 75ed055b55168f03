"""Seed import path: History."""

from keydnn.infrastructure.nn.model import History  # noqa: F401
