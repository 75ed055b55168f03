"""Seed import path: LSTMCell, LSTM."""

from keydnn.infrastructure.recurrent._cells import LSTMCell  # noqa: F401
from keydnn.infrastructure.recurrent._layers import LSTM  # noqa: F401
