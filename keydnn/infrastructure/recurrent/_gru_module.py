"""Seed import path: GRUCell, GRU."""

from keydnn.infrastructure.recurrent._cells import GRUCell  # noqa: F401
from keydnn.infrastructure.recurrent._layers import GRU  # noqa: F401
