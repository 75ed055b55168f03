"""Seed import path: Bidirectional."""

from keydnn.infrastructure.recurrent._layers import Bidirectional  # noqa: F401
