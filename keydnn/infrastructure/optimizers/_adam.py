"""Seed import path: Adam (and AdamW)."""

from keydnn.infrastructure.optim.adam import Adam, AdamW  # noqa: F401
