"""Recurrent layers (the seed's import path): RNNCell, LSTMCell, GRUCell, the time-major sequence modules RNN,
LSTM and GRU, and the Bidirectional wrapper."""

from keydnn.infrastructure.recurrent._cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
from keydnn.infrastructure.recurrent._layers import GRU, LSTM, RNN, Bidirectional, RecurrentLayer

__all__ = ["GRU", "LSTM", "RNN", "Bidirectional", "GRUCell", "LSTMCell", "RNNCell", "RecurrentCell",
           "RecurrentLayer"]
