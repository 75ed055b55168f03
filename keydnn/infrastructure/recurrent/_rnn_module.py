"""Seed import path: RNNCell, RNN."""

from keydnn.infrastructure.recurrent._cells import RNNCell  # noqa: F401
from keydnn.infrastructure.recurrent._layers import RNN  # noqa: F401
